//! The deployment template as CloudFormation receives it: `template.yaml` through
//! AWS SAM's own translator (`scripts/sam-translate`, the pinned aws-sam-cli), and
//! helpers to read the result.

use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The translated template (JSON), made once per test binary.
pub fn translated() -> &'static serde_json::Value {
    static TRANSLATED: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    TRANSLATED.get_or_init(|| translate(&[]))
}

pub fn translate(parameters: &[&str]) -> serde_json::Value {
    let output = std::process::Command::new(root().join("scripts/sam-translate"))
        .arg(root().join("template.yaml"))
        .args(parameters)
        .output()
        .expect("scripts/sam-translate runs (python3 and the pinned aws-sam-cli)");
    assert!(
        output.status.success(),
        "SAM's translator refused template.yaml: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

pub fn resources_of<'a>(template: &'a serde_json::Value, kind: &str) -> Vec<(&'a String, &'a serde_json::Value)> {
    template["Resources"].as_object().unwrap().iter().filter(|(_, r)| r["Type"] == kind).collect()
}

/// The logical id a `{"Ref": X}` or `{"Fn::GetAtt": [X, "Arn"]}` names.
pub fn referenced(value: &serde_json::Value) -> Option<&str> {
    value["Ref"].as_str().or_else(|| value["Fn::GetAtt"][0].as_str())
}

/// The function an integration or authorizer URI invokes: `${X.Arn}` or `__FunctionArn__`.
pub fn invoked_function(uri: &serde_json::Value) -> String {
    let sub = &uri["Fn::Sub"];
    if let Some(name) = sub[1]["__FunctionArn__"]["Fn::GetAtt"][0].as_str() {
        return name.to_owned();
    }
    let text = sub.as_str().unwrap();
    let start = text.find("/functions/${").unwrap() + "/functions/${".len();
    text[start..].split('.').next().unwrap().to_owned()
}
