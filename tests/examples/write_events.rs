//! Rewrites `events/*.json`, `events/manifest.json`, `events/local.env` and the table in
//! `events/README.md` from `latchkey_tests::events`. Run from the workspace root:
//! `cargo run -p latchkey-tests --example write_events`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;

#[tokio::main]
async fn main() {
    let samples = latchkey_tests::events::sample_events().await;
    let dir = std::path::Path::new("events");
    std::fs::create_dir_all(dir).unwrap();
    let mut manifest = Vec::new();
    let mut table = String::from("| File | Function | Outcome | What it is |\n| --- | --- | --- | --- |\n");
    for sample in &samples {
        let text = serde_json::to_string_pretty(&sample.event).unwrap() + "\n";
        std::fs::write(dir.join(sample.file), text).unwrap();
        let mut entry = serde_json::json!({"file": sample.file, "function": sample.function, "expect": sample.expect});
        let method = sample.event.get("httpMethod").or_else(|| sample.event.pointer("/requestContext/http/method"));
        if let Some(method) = method.filter(|_| sample.function != "authorizer") {
            entry["method"] = method.clone();
            entry["path"] =
                sample.event.get("path").or_else(|| sample.event.get("rawPath")).cloned().unwrap_or_default();
        }
        manifest.push(entry);
        let outcome = sample.expect.as_str().map_or_else(|| sample.expect.to_string(), str::to_owned);
        writeln!(table, "| `{}` | {} | {} | {} |", sample.file, sample.function, outcome, sample.description).unwrap();
    }
    let manifest = serde_json::to_string_pretty(&manifest).unwrap() + "\n";
    std::fs::write(dir.join("manifest.json"), manifest).unwrap();
    let readme = dir.join("README.md");
    let current = std::fs::read_to_string(&readme).unwrap_or_default();
    let (head, _) = current.split_once("<!-- events -->").unwrap_or((current.as_str(), ""));
    std::fs::write(readme, format!("{head}<!-- events -->\n{table}")).unwrap();
    std::fs::write(dir.join("local.env"), latchkey_tests::local_env()).unwrap();
    println!("wrote {} events and local.env", samples.len());
}
