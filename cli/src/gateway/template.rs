//! What the gateway reads from the SAM-translated template (the CloudFormation that
//! `sam deploy` hands over): the HTTP API's routes, its Lambda authorizers, the
//! functions with their environment, and the `AWS::Lambda::Permission`s that let API
//! Gateway invoke them.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

/// The account, region and partition the local API pretends to live in.
pub const ACCOUNT: &str = "123456789012";
/// See [`ACCOUNT`].
pub const REGION: &str = "us-east-1";

/// One HTTP API (an `AWS::ApiGatewayV2::Api` with an OpenAPI `Body`).
#[derive(Debug, Clone)]
pub struct HttpApi {
    /// The API's logical id, used as its local API id.
    pub id: String,
    /// Routes in the order of the OpenAPI document.
    pub routes: Vec<Route>,
    /// Lambda authorizers by name.
    pub authorizers: HashMap<String, Authorizer>,
}

/// One route: `METHOD /path` to a Lambda proxy integration.
#[derive(Debug, Clone)]
pub struct Route {
    /// Upper-case method, or `ANY`.
    pub method: String,
    /// The OpenAPI path (`/me`, `/items/{id}`, `/{proxy+}`).
    pub path: String,
    /// The integration function's logical id.
    pub function: String,
    /// `payloadFormatVersion` of the integration.
    pub payload_version: String,
    /// The authorizer, when the route has one.
    pub authorizer: Option<String>,
}

/// One Lambda authorizer (`x-amazon-apigateway-authorizer` of type `request`).
#[derive(Debug, Clone)]
pub struct Authorizer {
    /// Its name in the API (the security scheme's name).
    pub name: String,
    /// The authorizer function's logical id.
    pub function: String,
    /// Identity sources such as `$request.header.Authorization`.
    pub identity_source: Vec<String>,
    /// `authorizerResultTtlInSeconds` (0 = no caching).
    pub ttl: Duration,
    /// `authorizerPayloadFormatVersion`.
    pub payload_version: String,
    /// `enableSimpleResponses`.
    pub simple_responses: bool,
}

/// One `AWS::Lambda::Function`.
#[derive(Debug, Clone)]
pub struct Function {
    /// Logical id.
    pub name: String,
    /// `Metadata.BuildProperties.Binary` of the SAM function, when present.
    pub binary: Option<String>,
    /// Environment variables, intrinsic functions resolved where they can be.
    pub environment: BTreeMap<String, String>,
    /// Variables whose value is a resource attribute the local run cannot know
    /// (`!Ref Table`, `!GetAtt SigningKey.Arn`): set them in the environment.
    pub unresolved: Vec<String>,
    /// `Timeout` (default 3 s, as Lambda's).
    pub timeout: Duration,
    /// `MemorySize` (default 128 MB, as Lambda's).
    pub memory_mb: u32,
}

/// Who may invoke a function: one `AWS::Lambda::Permission` for API Gateway.
#[derive(Debug, Clone)]
pub struct Permission {
    /// The function's logical id.
    pub function: String,
    /// `SourceArn` with this API's id, region and account put in; `*` matches anything.
    pub source_arn: Option<String>,
}

/// Everything the gateway serves.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// The HTTP API.
    pub api: HttpApi,
    /// Functions by logical id.
    pub functions: HashMap<String, Function>,
    /// API Gateway's invoke permissions.
    pub permissions: Vec<Permission>,
}

impl Deployment {
    /// Reads a translated template. `parameters` override the template's defaults.
    pub fn from_template(template: &Value, parameters: &HashMap<String, String>) -> anyhow::Result<Self> {
        let resources = template["Resources"].as_object().context("the template has no Resources")?;
        let mut values: HashMap<String, String> = template["Parameters"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(name, p)| scalar(&p["Default"]).map(|d| (name.clone(), d)))
            .collect();
        values.extend(parameters.clone());
        let conditions = template["Conditions"].as_object().cloned().unwrap_or_default();
        let resolver = Resolver { parameters: values, conditions };

        let apis: Vec<_> = resources.iter().filter(|(_, r)| r["Type"] == "AWS::ApiGatewayV2::Api").collect();
        let [(api_id, api)] = apis.as_slice() else {
            bail!("the gateway serves exactly one AWS::ApiGatewayV2::Api; the template has {}", apis.len());
        };
        let body = resolver.evaluate(&api["Properties"]["Body"]);
        // "disableExecuteApiEndpoint": clients cannot reach the API's default endpoint
        // (FrontDoor=rest-api-waf puts a REST API in front, which is not emulated).
        let disabled = body["servers"].as_array().into_iter().flatten().any(|server| {
            server["x-amazon-apigateway-endpoint-configuration"]["disableExecuteApiEndpoint"] == Value::Bool(true)
        });
        if disabled {
            bail!(
                "{api_id}'s default endpoint is disabled (FrontDoor=rest-api-waf?): the gateway serves the HTTP API only"
            );
        }
        let api = HttpApi::from_body(api_id, &body)?;
        // Payload format 1.0 events differ in shape; only 2.0 (what this template uses) is emulated.
        for route in &api.routes {
            if route.payload_version != "2.0" {
                bail!(
                    "{} {}: payload format {} is not emulated (2.0 is)",
                    route.method,
                    route.path,
                    route.payload_version
                );
            }
        }
        for authorizer in api.authorizers.values() {
            if authorizer.payload_version != "2.0" {
                bail!(
                    "authorizer {}: payload format {} is not emulated (2.0 is)",
                    authorizer.name,
                    authorizer.payload_version
                );
            }
        }

        let functions = resources
            .iter()
            .filter(|(_, r)| r["Type"] == "AWS::Lambda::Function")
            .map(|(name, r)| (name.clone(), Function::from_resource(name, r, &resolver)))
            .collect();
        let permissions = resources
            .values()
            .filter(|r| r["Type"] == "AWS::Lambda::Permission")
            .filter(|r| r["Properties"]["Principal"] == "apigateway.amazonaws.com")
            .filter(|r| r["Properties"]["Action"] == "lambda:InvokeFunction")
            .filter_map(|r| {
                let function = logical_id(&r["Properties"]["FunctionName"])?;
                let source_arn = match &r["Properties"]["SourceArn"] {
                    Value::Null => None,
                    arn => Some(substitute(arn, &api.id)?),
                };
                Some(Permission { function, source_arn })
            })
            .collect();
        Ok(Self { api, functions, permissions })
    }

    /// Whether API Gateway may invoke `function` for a request whose execute-api ARN
    /// is `source_arn` (a permission without a `SourceArn` allows any).
    pub fn may_invoke(&self, function: &str, source_arn: &str) -> bool {
        self.permissions.iter().filter(|p| p.function == function).any(|p| match &p.source_arn {
            None => true,
            Some(pattern) => glob_matches(pattern, source_arn),
        })
    }

    /// The ARN API Gateway presents when it invokes a route's integration.
    pub fn route_arn(&self, method: &str, path: &str) -> String {
        format!("arn:aws:execute-api:{REGION}:{ACCOUNT}:{}/$default/{method}{path}", self.api.id)
    }

    /// The ARN API Gateway presents when it invokes an authorizer. The authorizer id
    /// is its name here (a deployed API has a generated id; permissions use `*`).
    pub fn authorizer_arn(&self, authorizer: &str) -> String {
        format!("arn:aws:execute-api:{REGION}:{ACCOUNT}:{}/authorizers/{authorizer}", self.api.id)
    }
}

impl HttpApi {
    fn from_body(id: &str, body: &Value) -> anyhow::Result<Self> {
        let mut authorizers = HashMap::new();
        for (name, scheme) in body["components"]["securitySchemes"].as_object().into_iter().flatten() {
            let spec = &scheme["x-amazon-apigateway-authorizer"];
            if spec.is_null() {
                continue;
            }
            if spec["type"] != "request" {
                bail!("authorizer {name}: only Lambda (request) authorizers are emulated, not {}", spec["type"]);
            }
            let function = logical_id(&spec["authorizerUri"]).with_context(|| format!("authorizer {name}: uri"))?;
            let identity_source = match &spec["identitySource"] {
                Value::String(one) => one.split(',').map(|s| s.trim().to_owned()).collect(),
                Value::Array(many) => many.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect(),
                _ => Vec::new(),
            };
            authorizers.insert(
                name.clone(),
                Authorizer {
                    name: name.clone(),
                    function,
                    identity_source,
                    // Unset, the HTTP API default is 300 s ("Control access to HTTP APIs
                    // with AWS Lambda authorizers", authorizerResultTtlInSeconds).
                    ttl: Duration::from_secs(number(&spec["authorizerResultTtlInSeconds"]).unwrap_or(300)),
                    payload_version: spec["authorizerPayloadFormatVersion"].as_str().unwrap_or("1.0").to_owned(),
                    simple_responses: spec["enableSimpleResponses"] == true,
                },
            );
        }
        let mut routes = Vec::new();
        for (path, operations) in body["paths"].as_object().into_iter().flatten() {
            for (method, operation) in operations.as_object().into_iter().flatten() {
                let integration = &operation["x-amazon-apigateway-integration"];
                if integration["type"] != "aws_proxy" {
                    continue;
                }
                let function =
                    logical_id(&integration["uri"]).with_context(|| format!("{method} {path}: integration uri"))?;
                let authorizer = operation["security"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_object)
                    .flat_map(|requirement| requirement.keys())
                    .find(|name| authorizers.contains_key(*name))
                    .cloned();
                let method = match method.as_str() {
                    "x-amazon-apigateway-any-method" => "ANY".to_owned(),
                    other => other.to_uppercase(),
                };
                routes.push(Route {
                    method,
                    path: path.clone(),
                    function,
                    payload_version: integration["payloadFormatVersion"].as_str().unwrap_or("2.0").to_owned(),
                    authorizer,
                });
            }
        }
        Ok(Self { id: id.to_owned(), routes, authorizers })
    }
}

impl Function {
    fn from_resource(name: &str, resource: &Value, resolver: &Resolver) -> Self {
        let properties = &resource["Properties"];
        let mut environment = BTreeMap::new();
        let mut unresolved = Vec::new();
        for (key, value) in properties["Environment"]["Variables"].as_object().into_iter().flatten() {
            match scalar(&resolver.evaluate(value)) {
                Some(value) => {
                    environment.insert(key.clone(), value);
                }
                None => unresolved.push(key.clone()),
            }
        }
        Self {
            name: name.to_owned(),
            binary: resource["Metadata"]["BuildProperties"]["Binary"].as_str().map(str::to_owned),
            environment,
            unresolved,
            timeout: Duration::from_secs(number(&resolver.evaluate(&properties["Timeout"])).unwrap_or(3)),
            memory_mb: number(&resolver.evaluate(&properties["MemorySize"]))
                .and_then(|m| u32::try_from(m).ok())
                .unwrap_or(128),
        }
    }

    /// The built `bootstrap`: `<dir>/<LogicalId>/bootstrap` as `sam build` lays it
    /// out, else `<dir>/<Binary>/bootstrap` as `cargo lambda build` does.
    pub fn bootstrap(&self, dir: &Path) -> Option<PathBuf> {
        let mut candidates = vec![dir.join(&self.name).join("bootstrap")];
        if let Some(binary) = &self.binary {
            candidates.push(dir.join(binary).join("bootstrap"));
        }
        candidates.into_iter().find(|path| path.is_file())
    }
}

/// The intrinsic functions a local run can evaluate: `Ref` to a parameter or pseudo
/// parameter, `Fn::If` on the template's conditions (`Fn::Equals`, `Fn::Not`,
/// `Fn::And`, `Fn::Or`, `Condition`). Anything only a deployed stack knows (`!Ref
/// Table`, `!GetAtt Key.Arn`) is left as it is.
struct Resolver {
    parameters: HashMap<String, String>,
    conditions: serde_json::Map<String, Value>,
}

impl Resolver {
    fn evaluate(&self, value: &Value) -> Value {
        match value {
            Value::Array(items) => Value::Array(items.iter().map(|item| self.evaluate(item)).collect()),
            Value::Object(map) if map.len() == 1 && map.contains_key("Ref") => {
                let name = map["Ref"].as_str().unwrap_or_default();
                match name {
                    "AWS::Region" => Value::String(REGION.to_owned()),
                    "AWS::AccountId" => Value::String(ACCOUNT.to_owned()),
                    "AWS::Partition" => Value::String("aws".to_owned()),
                    _ => self.parameters.get(name).map_or_else(|| value.clone(), |v| Value::String(v.clone())),
                }
            }
            Value::Object(map) if map.len() == 1 && map.contains_key("Fn::If") => {
                let branch = &map["Fn::If"];
                match branch[0].as_str().and_then(|name| self.condition(name, 0)) {
                    Some(true) => self.evaluate(&branch[1]),
                    Some(false) => self.evaluate(&branch[2]),
                    None => value.clone(),
                }
            }
            Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), self.evaluate(v))).collect()),
            other => other.clone(),
        }
    }

    fn condition(&self, name: &str, depth: usize) -> Option<bool> {
        self.truth(self.conditions.get(name)?, depth + 1)
    }

    fn truth(&self, value: &Value, depth: usize) -> Option<bool> {
        if depth > 16 {
            return None;
        }
        if let Some(name) = value["Condition"].as_str() {
            return self.condition(name, depth);
        }
        if let Some([a, b]) = value["Fn::Equals"].as_array().map(Vec::as_slice) {
            return Some(scalar(&self.evaluate(a))? == scalar(&self.evaluate(b))?);
        }
        if let Some([inner]) = value["Fn::Not"].as_array().map(Vec::as_slice) {
            return self.truth(inner, depth + 1).map(|t| !t);
        }
        let all = |items: &Vec<Value>| items.iter().map(|i| self.truth(i, depth + 1)).collect::<Option<Vec<bool>>>();
        if let Some(items) = value["Fn::And"].as_array() {
            return all(items).map(|t| t.iter().all(|b| *b));
        }
        if let Some(items) = value["Fn::Or"].as_array() {
            return all(items).map(|t| t.iter().any(|b| *b));
        }
        None
    }
}

fn number(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| value.as_str()?.parse().ok())
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// The logical id a function reference names: `{"Ref": X}`, `{"Fn::GetAtt": [X, "Arn"]}`,
/// or an `Fn::Sub` integration URI holding `${X.Arn}` or such a reference.
fn logical_id(value: &Value) -> Option<String> {
    if let Some(name) = value["Ref"].as_str() {
        return Some(name.to_owned());
    }
    if let Some(name) = value["Fn::GetAtt"][0].as_str() {
        return Some(name.to_owned());
    }
    let sub = &value["Fn::Sub"];
    let text = sub.as_str().or_else(|| sub[0].as_str())?;
    if let Some(found) = sub[1].as_object().and_then(|variables| variables.values().find_map(logical_id)) {
        return Some(found);
    }
    let start = text.find("/functions/${")? + "/functions/${".len();
    let reference = &text[start..];
    let end = reference.find('}')?;
    Some(reference[..end].trim_end_matches(".Arn").to_owned())
}

/// An `Fn::Sub` source ARN with the API id, stage wildcard, region and account put in.
fn substitute(value: &Value, api_id: &str) -> Option<String> {
    let (text, variables) = match &value["Fn::Sub"] {
        Value::String(text) => (text.clone(), None),
        Value::Array(parts) => (parts.first()?.as_str()?.to_owned(), parts.get(1).and_then(Value::as_object)),
        _ => return scalar(value),
    };
    let mut text = text
        .replace("${AWS::Partition}", "aws")
        .replace("${AWS::Region}", REGION)
        .replace("${AWS::AccountId}", ACCOUNT);
    for (name, replacement) in variables.into_iter().flatten() {
        let replacement = match replacement {
            Value::String(literal) => literal.clone(),
            reference if logical_id(reference).is_some_and(|id| id == api_id) => api_id.to_owned(),
            // A reference to another API: it must not match this one.
            _ => "\u{0}other-api".to_owned(),
        };
        text = text.replace(&format!("${{{name}}}"), &replacement);
    }
    Some(text.replace(&format!("${{{api_id}}}"), api_id))
}

/// `*` matches any run of characters, as in a Lambda permission's `SourceArn`.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else { return pattern == text };
    let Some(mut rest) = text.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    for (index, part) in parts.iter().enumerate() {
        if index == parts.len() - 1 {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::{Deployment, glob_matches};

    #[test]
    fn an_api_whose_default_endpoint_is_disabled_is_not_served() {
        let template = serde_json::json!({
            "Parameters": {"FrontDoor": {"Default": "http-api"}},
            "Conditions": {"UseRestApi": {"Fn::Equals": [{"Ref": "FrontDoor"}, "rest-api-waf"]}},
            "Resources": {"HttpApi": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {"Body": {
                "paths": {},
                "servers": [{"x-amazon-apigateway-endpoint-configuration":
                    {"disableExecuteApiEndpoint": {"Fn::If": ["UseRestApi", true, false]}}}]
            }}}}
        });
        let overrides = |value: &str| std::iter::once(("FrontDoor".to_owned(), value.to_owned())).collect();
        let error = Deployment::from_template(&template, &overrides("rest-api-waf")).unwrap_err();
        assert!(error.to_string().contains("default endpoint is disabled"), "{error}");
        assert!(Deployment::from_template(&template, &overrides("http-api")).is_ok());
    }

    #[test]
    fn glob_matches_like_a_source_arn() {
        assert!(glob_matches("arn:x:api/*/GET/me", "arn:x:api/$default/GET/me"));
        assert!(!glob_matches("arn:x:api/*/GET/me", "arn:x:api/$default/GET/admin"));
        assert!(glob_matches("arn:x:api/authorizers/*", "arn:x:api/authorizers/Latchkey"));
        assert!(!glob_matches("arn:x:api/authorizers/*", "arn:x:other/authorizers/Latchkey"));
        assert!(glob_matches("exact", "exact"));
        assert!(!glob_matches("exact", "exactly"));
        assert!(glob_matches("a*b*c", "aXXbYYc"));
        assert!(!glob_matches("a*b*c", "aXXbYY"));
    }
}
