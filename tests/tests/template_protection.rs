//! What the translated template grants and how it is reached: per-route throttles,
//! the REST API front door with per-IP AWS WAF rules (`FrontDoor=rest-api-waf`),
//! KMS signing on the active key only, and least privilege on the table's data.
//! Each reads what CloudFormation receives (`scripts/sam-translate`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use latchkey::store::{
    SESSION_ATTRIBUTES, SESSION_INDEX_READ, SESSION_LIST_ATTRIBUTES, SIGNING_KEY_ATTRIBUTES,
    SIGNING_KEY_PUBLIC_ATTRIBUTES, USER_INDEX_ATTRIBUTES, USER_STANDING_ATTRIBUTES,
};
use latchkey_tests::cfn::{invoked_function, referenced, resources_of, translate, translated};
use serde_json::{Value, json};

fn rest() -> &'static Value {
    static REST: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    REST.get_or_init(|| translate(&["FrontDoor=rest-api-waf"]))
}

/// Every statement of a function's role, conditional policies as the policy they grant.
fn statements(template: &Value, role: &str) -> Vec<Value> {
    let policies = template["Resources"][role]["Properties"]["Policies"].as_array();
    policies
        .into_iter()
        .flatten()
        .map(|policy| policy.get("Fn::If").map_or(policy, |branches| &branches[1]))
        .flat_map(|policy| policy["PolicyDocument"]["Statement"].as_array().unwrap().clone())
        .collect()
}

/// The statements of `role` in one signing mode: its unconditional statements, the
/// `IsDelegated` ones only with `delegated`, every other condition's as granted.
fn statements_in(template: &Value, role: &str, delegated: bool) -> Vec<Value> {
    let policies = template["Resources"][role]["Properties"]["Policies"].as_array();
    policies
        .into_iter()
        .flatten()
        .filter_map(|policy| match policy.get("Fn::If") {
            Some(branches) if branches[0] == "IsDelegated" => delegated.then(|| &branches[1]),
            Some(branches) => Some(&branches[1]),
            None => Some(policy),
        })
        .flat_map(|policy| policy["PolicyDocument"]["Statement"].as_array().unwrap().clone())
        .collect()
}

fn actions(statement: &Value) -> Vec<String> {
    match &statement["Action"] {
        Value::String(action) => vec![action.clone()],
        Value::Array(actions) => actions.iter().map(|a| a.as_str().unwrap().to_owned()).collect(),
        other => panic!("Action {other}"),
    }
}

fn names(list: &Value) -> BTreeSet<String> {
    list.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
}

fn set(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// `METHOD /path` of every operation of an OpenAPI body, with the function it invokes
/// and whether the authorizer guards it.
fn operations(body: &Value) -> BTreeSet<(String, String, bool)> {
    let mut found = BTreeSet::new();
    for (path, operations) in body["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let function = invoked_function(&operation["x-amazon-apigateway-integration"]["uri"]);
            // The admin routes' authorizer on the HTTP API is the same function with a
            // cache of its own (docs/deploy.md); on REST the one authorizer's policy guards them.
            let secured = operation["security"] == json!([{"LatchkeyAuthorizer": []}])
                || operation["security"] == json!([{"LatchkeyAdminAuthorizer": []}]);
            found.insert((format!("{} {path}", method.to_uppercase()), function, secured));
        }
    }
    found
}

#[test]
fn the_credential_routes_have_their_own_throttles_on_both_apis() {
    let stage = &translated()["Resources"]["HttpApiApiGatewayDefaultStage"]["Properties"];
    assert_eq!(
        stage["RouteSettings"],
        json!({
            "POST /login": {"ThrottlingRateLimit": {"Ref": "LoginThrottlingRateLimit"}, "ThrottlingBurstLimit": {"Ref": "LoginThrottlingBurstLimit"}},
            "POST /login/mfa": {"ThrottlingRateLimit": {"Ref": "LoginThrottlingRateLimit"}, "ThrottlingBurstLimit": {"Ref": "LoginThrottlingBurstLimit"}},
            "POST /login/mfa/setup": {"ThrottlingRateLimit": {"Ref": "LoginThrottlingRateLimit"}, "ThrottlingBurstLimit": {"Ref": "LoginThrottlingBurstLimit"}},
            "POST /refresh-token": {"ThrottlingRateLimit": {"Ref": "RefreshThrottlingRateLimit"}, "ThrottlingBurstLimit": {"Ref": "RefreshThrottlingBurstLimit"}},
            "POST /password/forgot": {"ThrottlingRateLimit": {"Ref": "AccountThrottlingRateLimit"}, "ThrottlingBurstLimit": {"Ref": "AccountThrottlingBurstLimit"}},
            "POST /signup": {"ThrottlingRateLimit": {"Ref": "AccountThrottlingRateLimit"}, "ThrottlingBurstLimit": {"Ref": "AccountThrottlingBurstLimit"}},
        })
    );
    assert_eq!(stage["DefaultRouteSettings"]["ThrottlingRateLimit"], json!({"Ref": "ThrottlingRateLimit"}));
    let rest_stage = &rest()["Resources"]["RestApiapiStage"]["Properties"];
    let settings: BTreeSet<(String, String, String)> = rest_stage["MethodSettings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let rate = s["ThrottlingRateLimit"]["Ref"].as_str().unwrap().to_owned();
            (s["HttpMethod"].as_str().unwrap().to_owned(), s["ResourcePath"].as_str().unwrap().to_owned(), rate)
        })
        .collect();
    let expected: BTreeSet<(String, String, String)> = [
        ("*", "/*", "ThrottlingRateLimit"),
        ("POST", "/~1login", "LoginThrottlingRateLimit"),
        ("POST", "/~1login~1mfa", "LoginThrottlingRateLimit"),
        ("POST", "/~1login~1mfa~1setup", "LoginThrottlingRateLimit"),
        ("POST", "/~1refresh-token", "RefreshThrottlingRateLimit"),
        ("POST", "/~1password~1forgot", "AccountThrottlingRateLimit"),
        ("POST", "/~1signup", "AccountThrottlingRateLimit"),
    ]
    .iter()
    .map(|(m, p, r)| ((*m).to_owned(), (*p).to_owned(), (*r).to_owned()))
    .collect();
    assert_eq!(settings, expected);
}

#[test]
fn the_default_front_door_is_the_http_api_alone() {
    let template = translated();
    assert_eq!(template["Parameters"]["FrontDoor"]["Default"], "http-api");
    assert_eq!(template["Conditions"]["UseRestApi"], json!({"Fn::Equals": [{"Ref": "FrontDoor"}, "rest-api-waf"]}));
    // Everything of the REST front door is conditional on it.
    for kind in
        ["AWS::ApiGateway::RestApi", "AWS::ApiGateway::Stage", "AWS::WAFv2::WebACL", "AWS::WAFv2::WebACLAssociation"]
    {
        let found = resources_of(template, kind);
        assert!(!found.is_empty(), "{kind}");
        assert!(found.iter().all(|(_, r)| r["Condition"] == "UseRestApi"), "{kind}");
    }
    let unconditional_rest_permissions = resources_of(template, "AWS::Lambda::Permission")
        .into_iter()
        .filter(|(_, p)| p["Properties"]["SourceArn"].to_string().contains("RestApi") && p["Condition"] != "UseRestApi")
        .count();
    assert_eq!(unconditional_rest_permissions, 0, "a permission naming the REST API must exist only with it");
}

#[test]
fn the_rest_front_door_serves_every_route_behind_per_ip_waf_rules_and_nothing_bypasses_it() {
    let template = rest();
    let resources = &template["Resources"];
    // The HTTP API's own endpoint is off, so the web ACL cannot be bypassed through it.
    let servers = &resources["HttpApi"]["Properties"]["Body"]["servers"];
    assert_eq!(
        servers[0]["x-amazon-apigateway-endpoint-configuration"]["disableExecuteApiEndpoint"],
        json!({"Fn::If": ["UseRestApi", true, false]})
    );
    // The same routes, functions and guards on both APIs (OPTIONS extra on REST: the
    // functions answer preflights; the HTTP API answers them itself).
    let http = operations(&resources["HttpApi"]["Properties"]["Body"]);
    let rest: BTreeSet<_> = operations(&resources["RestApi"]["Properties"]["Body"])
        .into_iter()
        .filter(|(route, _, _)| !route.starts_with("OPTIONS "))
        .collect();
    assert_eq!(rest, http);
    // Every REST integration may invoke its function from this API.
    for (route, function, _) in operations(&resources["RestApi"]["Properties"]["Body"]) {
        // A path parameter is `*` in the SourceArn.
        let path: Vec<&str> = route
            .split_once(' ')
            .unwrap()
            .1
            .split('/')
            .map(|segment| if segment.starts_with('{') { "*" } else { segment })
            .collect();
        let path = path.join("/");
        let allowed = resources_of(template, "AWS::Lambda::Permission").into_iter().any(|(_, p)| {
            let arn = p["Properties"]["SourceArn"]["Fn::Sub"].as_str().unwrap_or("");
            referenced(&p["Properties"]["FunctionName"]) == Some(function.as_str())
                && arn.contains("${RestApi}/*/*")
                && arn.ends_with(&path)
        });
        assert!(allowed, "{route}: API Gateway may not invoke {function}");
    }
    let authorizer = &resources["RestApi"]["Properties"]["Body"]["securityDefinitions"]["LatchkeyAuthorizer"]["x-amazon-apigateway-authorizer"];
    assert_eq!(authorizer["type"], "request");
    assert_eq!(authorizer["identitySource"], "method.request.header.Authorization");
    assert_eq!(invoked_function(&authorizer["authorizerUri"]), "AuthorizerFunction");
    // The web ACL: regional, per-IP rate-based rules answering 429, on the REST stage.
    let acl = &resources["WebAcl"]["Properties"];
    assert_eq!(acl["Scope"], "REGIONAL");
    assert_eq!(acl["DefaultAction"], json!({"Allow": {}}));
    let rules = acl["Rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2);
    for rule in rules {
        let rate = &rule["Statement"]["RateBasedStatement"];
        assert_eq!(rate["AggregateKeyType"], "IP", "{rule}");
        assert_eq!(rule["Action"]["Block"]["CustomResponse"]["ResponseCode"], 429, "{rule}");
    }
    let credential = &rules[0]["Statement"]["RateBasedStatement"];
    assert_eq!(credential["Limit"], json!({"Ref": "WafCredentialRequestsPerIp"}));
    let pattern = credential["ScopeDownStatement"]["RegexMatchStatement"]["RegexString"].as_str().unwrap();
    // The credential and link routes: guessing, refresh floods, mail floods.
    assert_eq!(
        pattern,
        "/(login|login/mfa|login/mfa/setup|refresh-token|password/forgot|password/reset|signup|email/verify)$"
    );
    assert_eq!(rules[1]["Statement"]["RateBasedStatement"]["Limit"], json!({"Ref": "WafRequestsPerIp"}));
    let association = &resources["WebAclAssociation"]["Properties"];
    assert_eq!(association["WebACLArn"], json!({"Fn::GetAtt": ["WebAcl", "Arn"]}));
    let arn = association["ResourceArn"]["Fn::Sub"].as_str().unwrap();
    assert!(arn.ends_with("::/restapis/${RestApi}/stages/${RestApiapiStage}"), "{arn}");
    assert_eq!(resources["RestApiapiStage"]["Type"], "AWS::ApiGateway::Stage");
    // Clients are told the URL of the API that is reachable.
    let url = &template["Outputs"]["ApiUrl"]["Value"]["Fn::If"];
    assert_eq!(url[0], "UseRestApi");
    assert!(url[1]["Fn::Sub"].as_str().unwrap().starts_with("https://${RestApi}."));
}

#[test]
fn only_the_active_signing_key_signs() {
    let template = translated();
    let active =
        json!({"Fn::If": ["HasSigningKeyArn", {"Ref": "SigningKeyArn"}, {"Fn::GetAtt": ["SigningKey", "Arn"]}]});
    let mut signers = 0;
    for (role, _) in resources_of(template, "AWS::IAM::Role") {
        for statement in statements(template, role) {
            if actions(&statement).iter().any(|a| a == "kms:Sign") {
                signers += 1;
                assert_eq!(statement["Resource"], active, "{role}: kms:Sign beyond the active key");
            }
        }
        let text = statements(template, role).iter().map(Value::to_string).collect::<String>();
        if !["LoginFunction", "RefreshFunction", "AccountFunction"].iter().any(|signer| role.starts_with(signer)) {
            assert!(!text.contains("kms:Sign"), "{role} may sign");
        }
    }
    assert_eq!(signers, 3, "login, refresh and the password change sign");
}

/// The refresh, logout and authorizer roles read only the attributes their code
/// requests (the store's own lists), never with `Select` other than specific
/// attributes, and write only the items they must; the index holds no secret.
#[test]
fn functions_read_only_the_attributes_their_code_requests() {
    let template = translated();
    let mut readable: BTreeSet<String> = set(&SESSION_ATTRIBUTES);
    readable.extend(set(&USER_STANDING_ATTRIBUTES));
    assert!(!readable.contains("passwordHash"));
    let attributes_of =
        |statement: &Value| names(&statement["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"]);
    let select_of = |statement: &Value| statement["Condition"]["StringEqualsIfExists"]["dynamodb:Select"].clone();
    for (role, reads) in [
        ("RefreshFunctionRole", vec!["dynamodb:GetItem"]),
        ("LogoutFunctionRole", vec!["dynamodb:GetItem", "dynamodb:Query"]),
        ("AuthorizerFunctionRole", vec!["dynamodb:BatchGetItem"]),
    ] {
        let mut seen = Vec::new();
        for statement in statements_in(template, role, false) {
            for action in actions(&statement).into_iter().filter(|a| a.starts_with("dynamodb:")) {
                match action.as_str() {
                    "dynamodb:GetItem" | "dynamodb:BatchGetItem" => {
                        assert_eq!(attributes_of(&statement), readable, "{role} {action}");
                        assert_eq!(select_of(&statement), "SPECIFIC_ATTRIBUTES", "{role} {action}");
                    }
                    "dynamodb:Query" => {
                        assert_eq!(attributes_of(&statement), set(&SESSION_INDEX_READ), "{role} {action}");
                        assert_eq!(select_of(&statement), "SPECIFIC_ATTRIBUTES", "{role} {action}");
                    }
                    "dynamodb:UpdateItem" => {
                        let keys = &statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"];
                        match names(keys).iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
                            ["SESSION#*"] => {}
                            ["USER#*"] => assert_eq!(
                                statement["Condition"]["StringEqualsIfExists"]["dynamodb:ReturnValues"], "NONE",
                                "{role}: a user item written must not be read back"
                            ),
                            other => panic!("{role}: UpdateItem on {other:?}"),
                        }
                    }
                    other => panic!("{role}: {other} is not one of its reads or writes"),
                }
                seen.push(action);
            }
        }
        for read in reads {
            assert!(seen.iter().any(|a| a == read), "{role} lacks {read}");
        }
    }
    let batch = statements(template, "AuthorizerFunctionRole")
        .into_iter()
        .find(|s| actions(s).contains(&"dynamodb:BatchGetItem".to_owned()))
        .unwrap();
    assert_eq!(
        names(&batch["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]),
        set(&["SESSION#*", "USER#*"])
    );
    // The session list's read: session items only, their list attributes only.
    let listing = statements(template, "AccountFunctionRole")
        .into_iter()
        .find(|s| actions(s).contains(&"dynamodb:BatchGetItem".to_owned()))
        .unwrap();
    assert_eq!(attributes_of(&listing), set(&SESSION_LIST_ATTRIBUTES));
    assert_eq!(select_of(&listing), "SPECIFIC_ATTRIBUTES");
    assert_eq!(names(&listing["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]), set(&["SESSION#*"]));
    let index = &template["Resources"]["Table"]["Properties"]["GlobalSecondaryIndexes"][0];
    assert_eq!(index["Projection"]["ProjectionType"], "INCLUDE");
    assert_eq!(names(&index["Projection"]["NonKeyAttributes"]), set(&USER_INDEX_ATTRIBUTES));
    for attribute in SESSION_INDEX_READ.iter().filter(|a| !["pk", "userId"].contains(a)) {
        assert!(USER_INDEX_ATTRIBUTES.contains(attribute), "the index lacks {attribute}, which its readers request");
    }
}

/// Each signing mode's IAM, read from the translated template: `kms:Sign` only for
/// the three functions that sign in either mode (delegated mode signs one vouch per
/// period with it), no KMS encryption permission in either (delegated keys are
/// sealed under the refresh-key derivation: no KMS call per instance); period keys
/// reachable only in delegated mode, the sealed private half only by the signers,
/// and never by the admin function, which is denied it.
#[test]
fn each_signing_mode_grants_what_it_needs_and_nothing_more() {
    let template = translated();
    assert_eq!(template["Conditions"]["IsDelegated"], json!({"Fn::Equals": [{"Ref": "Signing"}, "delegated"]}));
    let environment = &template["Resources"]["RefreshFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(environment["LATCHKEY_SIGNING"], json!({"Ref": "Signing"}));
    assert_eq!(environment["LATCHKEY_SIGNING_KEY_PERIOD_SECONDS"], json!({"Ref": "SigningKeyPeriodSeconds"}));
    let signing_keys = json!(["SIGNKEY#*"]);
    let key_reads = |statements: &[Value]| -> Vec<BTreeSet<String>> {
        statements
            .iter()
            .filter(|s| {
                s["Effect"] == "Allow"
                    && s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == signing_keys
            })
            .filter(|s| actions(s) == ["dynamodb:GetItem"])
            .map(|s| names(&s["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"]))
            .collect()
    };
    let key_writes = |statements: &[Value]| {
        statements
            .iter()
            .filter(|s| {
                s["Effect"] == "Allow"
                    && s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == signing_keys
            })
            .filter(|s| actions(s) != ["dynamodb:GetItem"])
            .count()
    };
    for (role, _) in resources_of(template, "AWS::IAM::Role") {
        for delegated in [false, true] {
            let statements = statements_in(template, role, delegated);
            let text = statements.iter().map(Value::to_string).collect::<String>();
            for action in ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:ReEncrypt"] {
                assert!(!text.contains(action), "{role} (delegated {delegated}) has {action}");
            }
            let signs = ["LoginFunction", "RefreshFunction", "AccountFunction"].iter().any(|f| role.starts_with(f));
            assert_eq!(text.contains("kms:Sign"), signs, "{role} (delegated {delegated})");
            if !delegated {
                assert!(
                    key_reads(&statements).is_empty() && key_writes(&statements) == 0,
                    "{role}: period keys in kms mode"
                );
            }
        }
        let delegated = statements_in(template, role, true);
        let expected: (Vec<BTreeSet<String>>, usize) = match role.trim_end_matches("Role") {
            // Broad item access already (they sign in both modes).
            "LoginFunction" | "AccountFunction" | "AdminFunction" | "EchoFunction" => (vec![], 0),
            "RefreshFunction" => (vec![set(&SIGNING_KEY_ATTRIBUTES)], 1),
            "AuthorizerFunction" | "JwksFunction" | "LogoutFunction" => (vec![set(&SIGNING_KEY_PUBLIC_ATTRIBUTES)], 0),
            other => panic!("unexpected role {other}"),
        };
        assert_eq!((key_reads(&delegated), key_writes(&delegated)), expected, "{role}");
    }
    assert!(!SIGNING_KEY_PUBLIC_ATTRIBUTES.contains(&"sealedKey"));
    // The admin function can read and write most items: it is denied the sealed
    // private half, whole-item reads and writes of period keys, in both modes.
    let denials: Vec<Value> =
        statements_in(template, "AdminFunctionRole", false).into_iter().filter(|s| s["Effect"] == "Deny").collect();
    assert_eq!(denials.len(), 3, "{denials:?}");
    for denial in &denials {
        assert_eq!(denial["Condition"]["ForAnyValue:StringLike"]["dynamodb:LeadingKeys"], signing_keys);
    }
    assert_eq!(denials[0]["Condition"]["ForAnyValue:StringEquals"]["dynamodb:Attributes"], json!(["sealedKey"]));
    assert_eq!(denials[1]["Condition"]["Null"]["dynamodb:Attributes"], "true");
    assert_eq!(actions(&denials[2]), ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]);
}
