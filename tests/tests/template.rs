//! `template.yaml` and the code agree: one function resource per function crate and
//! the reverse, every environment variable the template sets is one `Config` reads,
//! every required one is set, and no function policy grants a `*` resource.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use latchkey::config::{REQUIRED_IN_DEPLOYMENT, VARIABLES};
use serde_norway::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn template() -> Value {
    serde_norway::from_str(&std::fs::read_to_string(root().join("template.yaml")).unwrap()).unwrap()
}

fn functions(template: &Value) -> Vec<(String, Value)> {
    template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, resource)| resource["Type"] == "AWS::Serverless::Function")
        .map(|(name, resource)| (name.as_str().unwrap().to_owned(), resource.clone()))
        .collect()
}

#[test]
fn every_function_crate_has_a_resource_and_every_resource_a_crate() {
    let template = template();
    let binaries: BTreeSet<String> = functions(&template)
        .iter()
        .map(|(name, resource)| {
            assert_eq!(resource["Metadata"]["BuildMethod"], "rust-cargolambda", "{name}");
            resource["Metadata"]["BuildProperties"]["Binary"].as_str().expect(name).to_owned()
        })
        .collect();
    let crates: BTreeSet<String> = std::fs::read_dir(root().join("functions"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(binaries, crates);
    for name in &crates {
        let manifest = std::fs::read_to_string(root().join("functions").join(name).join("Cargo.toml")).unwrap();
        assert!(manifest.contains(&format!("name = \"{name}\"")), "functions/{name} must build a binary named {name}");
    }
}

#[test]
fn template_sets_only_variables_config_reads_and_every_required_one() {
    let template = template();
    let mut set = BTreeSet::new();
    let mut collect = |variables: &Value| {
        for (key, _) in variables.as_mapping().into_iter().flatten() {
            set.insert(key.as_str().unwrap().to_owned());
        }
    };
    collect(&template["Globals"]["Function"]["Environment"]["Variables"]);
    for (_, resource) in functions(&template) {
        collect(&resource["Properties"]["Environment"]["Variables"]);
    }
    for variable in &set {
        let known = VARIABLES.contains(&variable.as_str()) || variable == "RUST_LOG";
        assert!(known, "template.yaml sets {variable}, which nothing reads");
    }
    for required in REQUIRED_IN_DEPLOYMENT {
        assert!(set.contains(required), "template.yaml does not set {required}");
    }
}

#[test]
fn no_function_policy_grants_a_wildcard_resource_or_action() {
    let template = template();
    let mut statements = 0;
    for (name, resource) in functions(&template) {
        for policy in resource["Properties"]["Policies"].as_sequence().into_iter().flatten() {
            for statement in policy["Statement"].as_sequence().into_iter().flatten() {
                statements += 1;
                let mut strings = Vec::new();
                strings_in(&statement["Resource"], &mut strings);
                assert!(!strings.is_empty(), "{name}: a statement without a resource");
                assert!(strings.iter().all(|s| !s.contains('*')), "{name}: wildcard resource {strings:?}");
                let mut actions = Vec::new();
                strings_in(&statement["Action"], &mut actions);
                assert!(actions.iter().all(|a| !a.contains('*')), "{name}: wildcard action {actions:?}");
            }
        }
    }
    assert!(statements >= 5, "found only {statements} policy statements");
}

/// Every string inside `value`, through sequences and intrinsic-function tags.
fn strings_in(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(text) => out.push(text.clone()),
        Value::Sequence(items) => items.iter().for_each(|item| strings_in(item, out)),
        Value::Tagged(tagged) => strings_in(&tagged.value, out),
        Value::Mapping(map) => map.values().for_each(|item| strings_in(item, out)),
        _ => {}
    }
}
