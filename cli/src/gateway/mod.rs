//! `latchkey gateway` and `latchkey invoke`: template.yaml's HTTP API served on
//! 127.0.0.1 the way API Gateway serves it, in front of the real function binaries
//! (from `sam build` or `cargo lambda build`), each under a Lambda Runtime API this
//! process hosts. No Docker, no AWS account: the functions talk to whatever
//! `AWS_ENDPOINT_URL` names (moto in the tests).

mod proxy;
pub mod runtime;
pub mod template;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::{Request, State};
use clap::Args;
use serde_json::Value;

use proxy::Gateway;
use runtime::{FunctionSpec, Lambda, Outcome};
use template::Deployment;

/// Where the deployment comes from; shared by `gateway` and `invoke`.
#[derive(Debug, Args)]
pub struct DeploymentArgs {
    /// The SAM template; it is translated with AWS SAM's own translator
    /// (scripts/sam-translate, pinned aws-sam-cli) into what CloudFormation receives.
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
    /// An already translated template (JSON), instead of translating --template.
    #[arg(long, value_name = "JSON")]
    translated: Option<PathBuf>,
    /// Where the built functions are: <DIR>/<LogicalId>/bootstrap (sam build) or
    /// <DIR>/<binary>/bootstrap (cargo lambda build: target/lambda).
    #[arg(long, value_name = "DIR", default_value = ".aws-sam/build")]
    functions: PathBuf,
    /// A template parameter, as Name=Value (like sam's --parameter-overrides). Repeatable.
    #[arg(long = "parameter", value_name = "NAME=VALUE")]
    parameters: Vec<String>,
    /// KEY=VALUE lines given to every function after the template's own variables.
    /// Variables the template sets from resources (LATCHKEY_TABLE_NAME: !Ref Table)
    /// are otherwise taken from this process's environment.
    #[arg(long, value_name = "FILE")]
    env_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct GatewayArgs {
    #[command(flatten)]
    deployment: DeploymentArgs,
    /// Port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 3000)]
    port: u16,
}

#[derive(Debug, Args)]
pub struct InvokeArgs {
    #[command(flatten)]
    deployment: DeploymentArgs,
    /// The function's logical id in the template (LoginFunction).
    function: String,
    /// The event (JSON file; - for standard input).
    #[arg(long, value_name = "FILE")]
    event: PathBuf,
}

#[derive(Debug, Args)]
pub struct ColdStartArgs {
    #[command(flatten)]
    deployment: DeploymentArgs,
    /// Cold starts per function (the median is reported).
    #[arg(long, default_value_t = 7)]
    runs: usize,
    /// Functions to time, by logical id (default: every function of the template).
    #[arg(value_name = "FUNCTION")]
    only: Vec<String>,
}

/// Times each function's init under the Runtime API host: spawn to its first
/// request for an event, `--runs` times, new process each time, the functions
/// taken in turn so machine noise falls on all alike. Prints a Markdown table.
pub async fn cold_start(args: ColdStartArgs) -> anyhow::Result<ExitCode> {
    let deployment = load(&args.deployment)?;
    let functions = start_functions(&deployment, &args.deployment, None)?;
    let mut names: Vec<String> =
        if args.only.is_empty() { functions.keys().cloned().collect() } else { args.only.clone() };
    names.sort();
    let mut times: HashMap<&str, Vec<std::time::Duration>> = HashMap::new();
    for _ in 0..args.runs.max(1) {
        for name in &names {
            let lambda = functions.get(name).with_context(|| format!("no function {name} in the template"))?;
            let took = lambda.cold_start().await.map_err(|why| anyhow::anyhow!("{name}: {why}"))?;
            times.entry(name).or_default().push(took);
        }
    }
    println!("| Function | Median | Min | Max |\n| --- | --- | --- | --- |");
    let ms = |d: &std::time::Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    for name in &names {
        let mut runs = times.remove(name.as_str()).unwrap_or_default();
        runs.sort();
        let (Some(min), Some(max)) = (runs.first(), runs.last()) else { continue };
        println!("| {name} | {} | {} | {} |", ms(&runs[runs.len() / 2]), ms(min), ms(max));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn serve(args: GatewayArgs) -> anyhow::Result<ExitCode> {
    let deployment = load(&args.deployment)?;
    let functions = start_functions(&deployment, &args.deployment, None)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await.context("binding the port")?;
    println!("latchkey gateway listening on http://{}", listener.local_addr()?);
    for route in &deployment.api.routes {
        let auth = route.authorizer.as_deref().map(|a| format!(" (authorizer {a})")).unwrap_or_default();
        println!("  {} {} -> {}{auth}", route.method, route.path, route.function);
    }
    let gateway = Arc::new(Gateway::new(deployment, functions));
    let app = Router::new()
        .fallback(|State(gateway): State<Arc<Gateway>>, request: Request| gateway.handle(request))
        .with_state(gateway);
    let app = crate::loopback::only_loopback_hosts(app, listener.local_addr()?.port());
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(ExitCode::SUCCESS)
}

/// Runs one event through one function and prints what it returned (the response
/// on stdout; a function error as `{"errorType", "errorMessage"}` with exit code 1).
pub async fn invoke(args: InvokeArgs) -> anyhow::Result<ExitCode> {
    let deployment = load(&args.deployment)?;
    let functions = start_functions(&deployment, &args.deployment, Some(&args.function))?;
    let Some(lambda) = functions.get(&args.function) else {
        let mut names: Vec<_> = functions.keys().cloned().collect();
        names.sort();
        bail!("no function {} in the template (functions: {})", args.function, names.join(", "));
    };
    let text = if args.event.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(&args.event).with_context(|| format!("reading {}", args.event.display()))?
    };
    let event: Value = serde_json::from_str(&text).context("the event is not JSON")?;
    match lambda.invoke(&event).await {
        Outcome::Response(bytes) => {
            println!("{}", String::from_utf8_lossy(&bytes));
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Error { error_type, message } => {
            println!("{}", serde_json::json!({ "errorType": error_type, "errorMessage": message }));
            Ok(ExitCode::FAILURE)
        }
        Outcome::Timeout => bail!("{} timed out", args.function),
        Outcome::Crashed(why) => bail!("{} stopped: {why}", args.function),
    }
}

/// The translated template, read or made.
fn load(args: &DeploymentArgs) -> anyhow::Result<Deployment> {
    let parameters = pairs(&args.parameters, "--parameter")?;
    let text = match &args.translated {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        None => translate(&args.template, &args.parameters)?,
    };
    let template: Value = serde_json::from_str(&text).context("the translated template is not JSON")?;
    Deployment::from_template(&template, &parameters)
}

/// Runs `scripts/sam-translate` beside the template (SAM's translator, pinned).
fn translate(template: &Path, parameters: &[String]) -> anyhow::Result<String> {
    let root = template.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let script = root.join("scripts/sam-translate");
    if !script.is_file() {
        bail!("{} not found: give the translated template with --translated", script.display());
    }
    let output = std::process::Command::new(&script)
        .arg(template)
        .args(parameters)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        bail!("{} failed ({})", script.display(), output.status);
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// Every function of the template (or only `only`), ready to start on first use.
/// A variable the template sets from a stack resource is taken from this process's
/// environment or the env file; one given by neither is left unset, and said so once.
fn start_functions(
    deployment: &Deployment,
    args: &DeploymentArgs,
    only: Option<&str>,
) -> anyhow::Result<HashMap<String, Arc<Lambda>>> {
    let extra = match &args.env_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let lines: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned)
                .collect();
            // dotenv quoting, as cargo-lambda reads the same file: 'value' is taken as is.
            let mut pairs = pairs(&lines, "--env-file")?;
            for value in pairs.values_mut() {
                if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
                    *value = inner.to_owned();
                }
            }
            pairs
        }
        None => HashMap::new(),
    };
    let mut functions = HashMap::new();
    let mut missing = Vec::new();
    let mut unset = std::collections::BTreeSet::new();
    for function in deployment.functions.values().filter(|f| only.is_none_or(|name| f.name == name)) {
        let Some(bootstrap) = function.bootstrap(&args.functions) else {
            missing.push(function.name.clone());
            continue;
        };
        let mut environment = function.environment.clone();
        // The env file comes last and wins; what it lacks comes from this process.
        for name in function.unresolved.iter().filter(|name| !extra.contains_key(*name)) {
            match std::env::var(name) {
                Ok(value) => {
                    environment.insert(name.clone(), value);
                }
                Err(_) => {
                    unset.insert(name.clone());
                }
            }
        }
        environment.extend(extra.clone());
        let spec = FunctionSpec {
            name: function.name.clone(),
            bootstrap,
            environment,
            timeout: function.timeout,
            memory_mb: function.memory_mb,
        };
        functions.insert(function.name.clone(), Arc::new(Lambda::new(spec)));
    }
    if !unset.is_empty() {
        let names: Vec<_> = unset.into_iter().collect();
        eprintln!("latchkey: set from stack resources in the template, and not given here: {}", names.join(", "));
    }
    if !missing.is_empty() {
        missing.sort();
        bail!(
            "no bootstrap in {} for {}: run `sam build` (or `cargo lambda build` and --functions target/lambda)",
            args.functions.display(),
            missing.join(", ")
        );
    }
    Ok(functions)
}

fn pairs(items: &[String], what: &str) -> anyhow::Result<HashMap<String, String>> {
    items
        .iter()
        .map(|item| match item.split_once('=') {
            Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
            // The value is not echoed: it may be a secret.
            _ => bail!("{what} takes NAME=VALUE"),
        })
        .collect()
}
