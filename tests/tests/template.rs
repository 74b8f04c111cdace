//! `template.yaml` and the code agree: one function resource per function crate and
//! the reverse, every environment variable the template sets is one `Config` reads,
//! every required one is set, and no function policy grants a `*` resource. The
//! second half reads what CloudFormation receives: the template as AWS SAM's own
//! translator renders it (`scripts/sam-translate`, the pinned aws-sam-cli).
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
            // A policy under `!If [Condition, policy, !Ref AWS::NoValue]` is checked as
            // the policy it grants when the condition holds.
            let policy = match policy {
                Value::Tagged(tagged) if tagged.tag == "If" => &tagged.value[1],
                policy => policy,
            };
            // A SAM policy template (DynamoDBCrudPolicy: ...) would expand to statements
            // this test cannot see: only inline statements are allowed.
            assert!(policy["Statement"].is_sequence(), "{name}: a policy that is not inline statements: {policy:?}");
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

use latchkey_tests::cfn::{invoked_function, referenced, resources_of, translated};

/// `(function, SourceArn pattern)` of every permission that lets API Gateway invoke
/// a function from the HTTP API, with `__ApiId__` checked to be this API (the REST
/// front door's own, conditional permissions are `template_protection.rs`'s).
fn api_permissions() -> Vec<(String, String)> {
    let template = translated();
    resources_of(template, "AWS::Lambda::Permission")
        .into_iter()
        .filter_map(|(name, permission)| {
            let properties = &permission["Properties"];
            if permission["Condition"] == "UseRestApi" {
                return None;
            }
            assert_eq!(properties["Principal"], "apigateway.amazonaws.com", "{name}");
            assert_eq!(properties["Action"], "lambda:InvokeFunction", "{name}");
            let source = &properties["SourceArn"]["Fn::Sub"];
            assert_eq!(source[1]["__ApiId__"]["Ref"], "HttpApi", "{name}: SourceArn must name this API");
            let pattern = source[0].as_str().unwrap_or_else(|| panic!("{name}: no SourceArn")).to_owned();
            assert!(
                pattern.starts_with("arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${__ApiId__}/"),
                "{name}: {pattern}"
            );
            Some((referenced(&properties["FunctionName"]).unwrap().to_owned(), pattern))
        })
        .collect()
}

#[test]
fn every_route_integration_has_an_invoke_permission_for_its_route_of_this_api() {
    let template = translated();
    let body = &template["Resources"]["HttpApi"]["Properties"]["Body"];
    let permissions = api_permissions();
    let mut routes = 0;
    for (path, operations) in body["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let integration = &operation["x-amazon-apigateway-integration"];
            assert_eq!(integration["type"], "aws_proxy", "{method} {path}");
            assert_eq!(integration["payloadFormatVersion"], "2.0", "{method} {path}");
            let function = invoked_function(&integration["uri"]);
            // A path parameter is `*` in the permission's SourceArn.
            let arn_path: Vec<&str> =
                path.split('/').map(|segment| if segment.starts_with('{') { "*" } else { segment }).collect();
            let wanted = format!("${{__ApiId__}}/${{__Stage__}}/{}{}", method.to_uppercase(), arn_path.join("/"));
            assert!(
                permissions.iter().any(|(f, pattern)| *f == function && pattern.ends_with(&wanted)),
                "{method} {path}: API Gateway may not invoke {function} ({permissions:?})"
            );
            routes += 1;
        }
    }
    assert_eq!(
        routes, 26,
        "POST /login, /login/mfa, /login/mfa/setup, /refresh-token, /logout, /password, /password/forgot, \
         /password/reset, /signup, /email/verify, /mfa/totp, /mfa/totp/confirm; GET /.well-known/jwks.json, /me, \
         /sessions; DELETE /sessions/{{id}}, /mfa/totp; the 9 admin routes"
    );
}

#[test]
fn the_authorizer_has_an_invoke_permission_for_this_apis_authorizers() {
    let permissions = api_permissions();
    let authorizer: Vec<_> = permissions.iter().filter(|(f, _)| f == "AuthorizerFunction").collect();
    assert_eq!(authorizer.len(), 1, "{permissions:?}");
    assert!(authorizer[0].1.ends_with("${__ApiId__}/authorizers/*"), "{:?}", authorizer[0]);
}

#[test]
fn the_authorizer_is_configured_as_docs_deploy_md_states() {
    let template = translated();
    let body = &template["Resources"]["HttpApi"]["Properties"]["Body"];
    let schemes = body["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes.len(), 2, "LatchkeyAuthorizer and the admin API's LatchkeyAdminAuthorizer");
    // The admin API's: the same function, a cache of its own keyed by token and route.
    let admin = &schemes["LatchkeyAdminAuthorizer"]["x-amazon-apigateway-authorizer"];
    assert_eq!(invoked_function(&admin["authorizerUri"]), "AuthorizerFunction");
    assert_eq!(admin["identitySource"], serde_json::json!(["$request.header.Authorization", "$context.routeKey"]));
    assert_eq!(
        admin["authorizerResultTtlInSeconds"],
        serde_json::json!({"Fn::If": ["HasSessionCheck", {"Ref": "AuthorizerSessionCheckSeconds"}, 300]})
    );
    for (path, operations) in body["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let expected = if path.starts_with("/admin/") { "LatchkeyAdminAuthorizer" } else { "LatchkeyAuthorizer" };
            if let Some(security) = operation["security"].as_array() {
                assert_eq!(security[0].as_object().unwrap().keys().next().unwrap(), expected, "{method} {path}");
            }
        }
    }
    let spec = &schemes["LatchkeyAuthorizer"]["x-amazon-apigateway-authorizer"];
    assert_eq!(spec["type"], "request");
    assert_eq!(invoked_function(&spec["authorizerUri"]), "AuthorizerFunction");
    assert_eq!(spec["identitySource"], serde_json::json!(["$request.header.Authorization"]));
    assert_eq!(spec["authorizerPayloadFormatVersion"], "2.0");
    assert_eq!(spec["enableSimpleResponses"], true);
    // 0 (no cache) when route roles are set; else the session-check interval while the
    // check is on (a revocation then reaches the APIs within twice it), 300 s when off.
    assert_eq!(
        spec["authorizerResultTtlInSeconds"],
        serde_json::json!({"Fn::If": ["HasRouteRoles", 0, {"Fn::If": ["HasSessionCheck", {"Ref": "AuthorizerSessionCheckSeconds"}, 300]}]})
    );
    assert_eq!(
        template["Conditions"]["HasSessionCheck"],
        serde_json::json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "AuthorizerSessionCheckSeconds"}, 0]}]})
    );
    // The session check's read is granted only while the check is on, on the table only.
    let role = &template["Resources"]["AuthorizerFunctionRole"]["Properties"]["Policies"];
    let conditional: Vec<&serde_json::Value> = role
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.get("Fn::If"))
        .filter(|branches| branches[0] != "IsDelegated")
        .collect();
    assert_eq!(conditional.len(), 1, "{role}");
    assert_eq!(conditional[0][0], "HasSessionCheck");
    assert_eq!(conditional[0][2], serde_json::json!({"Ref": "AWS::NoValue"}));
    let statement = &conditional[0][1]["PolicyDocument"]["Statement"][0];
    assert_eq!(
        (statement["Action"].as_str(), &statement["Resource"]),
        (Some("dynamodb:BatchGetItem"), &serde_json::json!({"Fn::GetAtt": ["Table", "Arn"]}))
    );
    assert_eq!(
        template["Conditions"]["HasRouteRoles"],
        serde_json::json!({"Fn::Or": [
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "RouteRoles"}, ""]}]},
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "RouteMfa"}, ""]}]},
        ]})
    );
    // GET /me and the signed-in routes (which also verify the token themselves) are
    // behind the authorizer, the admin API behind its own; login, refresh, logout, JWKS
    // and the link routes are public.
    for (path, operations) in body["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let secured = operation["security"] == serde_json::json!([{"LatchkeyAuthorizer": []}])
                || operation["security"] == serde_json::json!([{"LatchkeyAdminAuthorizer": []}]);
            let signed_in = ["/me", "/password", "/sessions", "/sessions/{id}", "/mfa/totp", "/mfa/totp/confirm"]
                .contains(&path.as_str());
            assert_eq!(secured, signed_in || path.starts_with("/admin/"), "{method} {path}");
        }
    }
    let deploy = std::fs::read_to_string(root().join("docs/deploy.md")).unwrap();
    for stated in ["$request.header.Authorization", "`2.0`", "simple responses", "300 s", "ReauthorizeEvery: 0"] {
        assert!(deploy.contains(stated), "docs/deploy.md no longer states {stated}");
    }
}

#[test]
fn no_function_role_grants_a_wildcard_resource_or_action() {
    let template = translated();
    let roles = resources_of(template, "AWS::IAM::Role");
    assert_eq!(roles.len(), 8, "one role per function");
    let mut statements = 0;
    for (name, role) in roles {
        let managed = role["Properties"]["ManagedPolicyArns"].as_array().unwrap();
        // The one managed policy: CloudWatch Logs for the function's own logs.
        for arn in managed {
            assert_eq!(arn, "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole", "{name}");
        }
        for policy in role["Properties"]["Policies"].as_array().into_iter().flatten() {
            let policy = policy.get("Fn::If").map_or(policy, |branches| &branches[1]);
            for statement in policy["PolicyDocument"]["Statement"].as_array().unwrap() {
                statements += 1;
                // Conditions may match key prefixes (`SESSION#*`); grants may not.
                let text = format!("{} {}", statement["Action"], statement["Resource"]);
                assert!(!text.contains('*'), "{name}: a wildcard in {text}");
                // The one denial: the admin role's, of period keys' private halves.
                let denial = name.starts_with("AdminFunction") && text.contains("dynamodb:");
                assert!(statement["Effect"] == "Allow" || denial, "{name}: {statement}");
            }
        }
    }
    assert!(statements >= 11, "found only {statements} statements");
}

/// A condition of the `!Not [!Equals [!Ref Parameter, literal]]` kind, on the
/// parameters' defaults.
fn condition(template: &serde_json::Value, name: &str) -> bool {
    let mut expression = &template["Conditions"][name];
    let mut negated = false;
    if let Some([inner]) = expression["Fn::Not"].as_array().map(Vec::as_slice) {
        negated = true;
        expression = inner;
    }
    let [left, right] = expression["Fn::Equals"].as_array().map(Vec::as_slice).expect(name) else {
        panic!("{name}: not an Fn::Equals");
    };
    let default = &template["Parameters"][left["Ref"].as_str().expect(name)]["Default"];
    let literal = |v: &serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    (literal(default) == literal(right)) != negated
}

/// Every function's environment, as CloudFormation would set it from the parameter
/// defaults (resources stand in with plausible values), starts `Config`.
#[test]
fn config_accepts_every_functions_environment_from_the_translated_template() {
    let template = translated();
    let parameters = template["Parameters"].as_object().unwrap();
    let functions = resources_of(template, "AWS::Lambda::Function");
    assert_eq!(functions.len(), 8);
    for (name, function) in functions {
        let variables = function["Properties"]["Environment"]["Variables"].as_object().unwrap();
        assert!(!variables.contains_key("RUST_LOG"), "{name}: RUST_LOG would replace the safe default filter");
        let value = |raw: &serde_json::Value| -> String {
            let raw = match raw["Fn::If"].as_array() {
                Some(branches) if condition(template, branches[0].as_str().unwrap()) => &branches[1],
                Some(branches) => &branches[2],
                None => raw,
            };
            match (raw.as_str(), referenced(raw)) {
                (Some(text), _) => text.to_owned(),
                (None, Some("Table")) => "latchkey-Table-1ABC".to_owned(),
                (None, Some(key)) if raw["Fn::GetAtt"].is_array() => {
                    format!("arn:aws:kms:us-east-1:123456789012:key/{key}")
                }
                (None, Some(parameter)) => {
                    let default = &parameters[parameter]["Default"];
                    default.as_str().map_or_else(|| default.to_string(), str::to_owned)
                }
                _ => panic!("{name}: an environment value CloudFormation resolves how? {raw}"),
            }
        };
        let environment: std::collections::HashMap<String, String> =
            variables.iter().map(|(k, v)| (k.clone(), value(v))).collect();
        let config = latchkey::Config::from_lookup(|key| environment.get(key).cloned());
        assert!(config.is_ok(), "{name}: {config:?}");
    }
}

#[test]
fn every_function_logs_to_its_own_group_with_retention_and_login_concurrency_is_optional() {
    let template = translated();
    for (name, function) in resources_of(template, "AWS::Lambda::Function") {
        let group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"].as_str().expect(name);
        let resource = &template["Resources"][group];
        assert_eq!(resource["Type"], "AWS::Logs::LogGroup", "{name}");
        assert_eq!(resource["Properties"]["RetentionInDays"], serde_json::json!({"Ref": "LogRetentionDays"}), "{name}");
    }
    let login = &template["Resources"]["LoginFunction"]["Properties"];
    assert_eq!(
        login["ReservedConcurrentExecutions"],
        serde_json::json!({"Fn::If": ["HasLoginReservedConcurrency", {"Ref": "LoginReservedConcurrency"}, {"Ref": "AWS::NoValue"}]})
    );
    assert_eq!(template["Parameters"]["LoginReservedConcurrency"]["Default"], 0, "unset by default");
}

#[test]
fn allowed_origins_must_be_written_without_spaces_for_api_gateway_and_the_functions_to_agree() {
    let template = template();
    let pattern = template["Parameters"]["AllowedOrigins"]["AllowedPattern"].as_str().unwrap();
    // CloudFormation matches AllowedPattern against the whole value (java.util.regex).
    let accepts = |value: &str| {
        let output = std::process::Command::new("python3")
            .args([
                "-c",
                "import re, sys; sys.exit(0 if re.fullmatch(sys.argv[1], sys.argv[2]) else 1)",
                pattern,
                value,
            ])
            .status()
            .unwrap();
        output.success()
    };
    assert!(accepts(""));
    assert!(accepts("https://app.example.com"));
    assert!(accepts("https://app.example.com,http://localhost:5173"));
    assert!(!accepts("https://app.example.com, https://admin.example.com"), "a space after the comma");
    assert!(!accepts("https://app.example.com/path"));
    assert!(!accepts("*"));
}

/// Every alarm watches a counter the functions emit (shared/src/metrics.rs), in the
/// namespace they emit it to, with exactly the dimensions they give it: an alarm on a
/// name or dimension set nobody writes would never fire.
#[test]
fn every_alarm_watches_a_metric_the_functions_emit() {
    use latchkey::metrics::{DEFAULT_NAMESPACE, METRICS, dimension_name};
    let template = template();
    let mut watched = 0;
    for (name, resource) in template["Resources"].as_mapping().unwrap() {
        if resource["Type"].as_str() != Some("AWS::CloudWatch::Alarm") {
            continue;
        }
        let mut metrics: Vec<&Value> = Vec::new();
        if resource["Properties"]["MetricName"].is_string() {
            metrics.push(&resource["Properties"]);
        }
        for query in resource["Properties"]["Metrics"].as_sequence().into_iter().flatten() {
            if query["MetricStat"].is_mapping() {
                metrics.push(&query["MetricStat"]["Metric"]);
            }
        }
        assert!(!metrics.is_empty(), "{name:?} watches nothing");
        for metric in metrics {
            watched += 1;
            assert_eq!(metric["Namespace"].as_str(), Some(DEFAULT_NAMESPACE), "{name:?}");
            let metric_name = metric["MetricName"].as_str().unwrap();
            let (_, _, fields) = METRICS
                .iter()
                .find(|(_, emitted, _)| *emitted == metric_name)
                .unwrap_or_else(|| panic!("{name:?}: nothing emits {metric_name}"));
            let mut expected: BTreeSet<String> = fields.iter().map(|field| dimension_name(field)).collect();
            expected.insert("Function".to_owned());
            let dimensions: BTreeSet<String> = metric["Dimensions"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|dimension| dimension["Name"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(dimensions, expected, "{name:?}: {metric_name}");
        }
    }
    assert!(watched >= 8, "only {watched} alarm metrics");
}
