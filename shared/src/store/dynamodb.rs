//! The DynamoDB store: one table, item mapping, and every access pattern of
//! `docs/storage.md` as a single request (conditional where a rule needs it).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    KeysAndAttributes, Projection, ProjectionType, ReturnValue, ReturnValuesOnConditionCheckFailure,
    ScalarAttributeType, TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};

use super::{
    ClientInfo, CredentialChange, CredentialStore, ListedUser, LoginAttemptStore, MAX_SESSIONS_READ, Membership,
    PasswordChange, RotateOutcome, SecretRecord, Session, SessionLookup, SessionStore, StandingChange, StandingOutcome,
    StoreError, TotpChange, TotpState, User, UserStanding, UserStore, UsersPage,
};
use crate::onetime::Purpose;
use crate::signing::{DelegatedKeyRecord, DelegatedKeyStore, KeyPeriod, SigningError};
use crate::token::SessionId;

type Item = HashMap<String, AttributeValue>;

/// Name of the global secondary index that lists a user's items by `userId`.
pub const USER_INDEX: &str = "byUser";
/// Name of the global secondary index that lists users in email order: partition
/// key `userList` (always `USER`, on user items only), sort key `email`.
pub const USERS_INDEX: &str = "users";
/// The non-key attributes the `users` index holds (projection `INCLUDE`): what an
/// administrator's user list shows, no secret, and nothing that changes per login or
/// logout, so a sign-in never writes to the index.
pub const USERS_INDEX_ATTRIBUTES: [&str; 5] = ["userId", "role", "disabled", "createdAt", "emailVerified"];
/// The table's TTL attribute (epoch seconds).
pub const TTL_ATTRIBUTE: &str = "ttl";

/// The attributes every read of a session item requests (`ProjectionExpression`),
/// and the only ones the refresh, logout and authorizer roles may read
/// (`dynamodb:Attributes` in template.yaml).
pub const SESSION_ATTRIBUTES: [&str; 14] = [
    "pk",
    "sessionId",
    "userId",
    "email",
    "userEpoch",
    "role",
    "gen",
    "createdAt",
    "rotatedAt",
    "idleExpiresAt",
    "absExpiresAt",
    "revokedAt",
    "revokeReason",
    "amr",
];

/// What a `Query` of the `byUser` index reads of each session: [`SESSION_ATTRIBUTES`]
/// but `amr`, which the index does not hold (its projection cannot change in place;
/// a listing needs no `amr`).
pub const SESSION_INDEX_READ: [&str; 13] = {
    let mut read = [""; 13];
    let mut i = 0;
    while i < read.len() {
        read[i] = SESSION_ATTRIBUTES[i];
        i += 1;
    }
    read
};

/// What a session list reads of each session: [`SESSION_ATTRIBUTES`] and where it
/// was last used. Only the account function's `BatchGetItem` may read these two.
pub const SESSION_LIST_ATTRIBUTES: [&str; 16] = with_client_details(SESSION_ATTRIBUTES);

/// `attributes` and the two client-detail attributes after them.
const fn with_client_details(attributes: [&'static str; 14]) -> [&'static str; 16] {
    let mut all = [""; 16];
    let mut i = 0;
    while i < attributes.len() {
        all[i] = attributes[i];
        i += 1;
    }
    all[14] = "userAgent";
    all[15] = "ip";
    all
}

/// The attributes of a user item that a [`UserStanding`] is read from: never the
/// password hash.
pub const USER_STANDING_ATTRIBUTES: [&str; 6] = ["pk", "userId", "email", "role", "disabled", "sessionEpoch"];

/// The non-key attributes the `byUser` index holds (projection `INCLUDE`): what
/// listing a user's sessions and finding a user by id read, and no secret.
pub const USER_INDEX_ATTRIBUTES: [&str; 13] = [
    "sessionId",
    "email",
    "userEpoch",
    "role",
    "gen",
    "createdAt",
    "rotatedAt",
    "idleExpiresAt",
    "absExpiresAt",
    "revokedAt",
    "revokeReason",
    "disabled",
    "sessionEpoch",
];

const USER_PREFIX: &str = "USER#";
const SESSION_PREFIX: &str = "SESSION#";
const ATTEMPTS_PREFIX: &str = "ATTEMPTS#";
const COUNT_PREFIX: &str = "COUNT#";
const SECRET_PREFIX: &str = "SECRET#";
/// How long after a secret's expiry TTL may delete its item, and an abandoned
/// sign-up's user item after its pending expiry (both are checked in code).
const TIDY_AFTER_SECS: u64 = 24 * 60 * 60;
const USER_SORT_KEY: &str = "USER";
/// The `userList` value of every user item (the `users` index's one partition).
const USER_LIST: &str = "USER";
/// The item recording the active administrators' ids (a string set `ids`).
const ADMINS_KEY: &str = "ADMINS";
/// Prefix of a delegated signing key's item: `SIGNKEY#<period seconds>#<period start>`.
const SIGNING_KEY_PREFIX: &str = "SIGNKEY#";
/// What verifiers (the authorizer, the JWKS) read of a delegated key's item: never
/// its sealed private half. The template's `dynamodb:Attributes` lists match.
pub const SIGNING_KEY_PUBLIC_ATTRIBUTES: [&str; 4] = ["pk", "kid", "vouch", "createdAt"];
/// What signers read: the public attributes and the sealed private half.
pub const SIGNING_KEY_ATTRIBUTES: [&str; 5] = ["pk", "kid", "vouch", "createdAt", "sealedKey"];

/// Users and sessions in one DynamoDB table (see `docs/storage.md`).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    /// A store on `table`, using `client` (built once at cold start).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// Creates the table (on-demand billing, the `byUser` index) if it does not
    /// exist, and enables TTL on [`TTL_ATTRIBUTE`] if it is not enabled. Idempotent.
    /// Returns whether the table was created by this call.
    pub async fn ensure_table(client: &Client, table: &str) -> Result<bool, StoreError> {
        let exists = match client.describe_table().table_name(table).send().await {
            Ok(_) => true,
            Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => false,
            Err(error) => return Err(unavailable("DescribeTable", &error)),
        };
        if !exists {
            let key = |name: &str, key_type| {
                KeySchemaElement::builder().attribute_name(name).key_type(key_type).build().map_err(build_error)
            };
            let attribute = |name: &str| {
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(build_error)
            };
            // Both indexes project `INCLUDE` of the attributes their readers need.
            let included = |name: &str, hash: &str, range: &str, attributes: &[&str]| {
                GlobalSecondaryIndex::builder()
                    .index_name(name)
                    .key_schema(key(hash, KeyType::Hash)?)
                    .key_schema(key(range, KeyType::Range)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::Include)
                            .set_non_key_attributes(Some(attributes.iter().map(|a| (*a).to_owned()).collect()))
                            .build(),
                    )
                    .build()
                    .map_err(build_error)
            };
            let index = included(USER_INDEX, "userId", "gsi1sk", &USER_INDEX_ATTRIBUTES)?;
            let users = included(USERS_INDEX, "userList", "email", &USERS_INDEX_ATTRIBUTES)?;
            client
                .create_table()
                .table_name(table)
                .billing_mode(BillingMode::PayPerRequest)
                .key_schema(key("pk", KeyType::Hash)?)
                .attribute_definitions(attribute("pk")?)
                .attribute_definitions(attribute("userId")?)
                .attribute_definitions(attribute("gsi1sk")?)
                .attribute_definitions(attribute("userList")?)
                .attribute_definitions(attribute("email")?)
                .global_secondary_indexes(index)
                .global_secondary_indexes(users)
                .send()
                .await
                .map_err(|error| unavailable("CreateTable", &error))?;
            client
                .wait_until_table_exists()
                .table_name(table)
                .wait(std::time::Duration::from_secs(120))
                .await
                .map_err(|error| StoreError::Unavailable(format!("waiting for table: {error}")))?;
        }
        let ttl = client
            .describe_time_to_live()
            .table_name(table)
            .send()
            .await
            .map_err(|error| unavailable("DescribeTimeToLive", &error))?;
        let status = ttl.time_to_live_description().and_then(|d| d.time_to_live_status());
        if !matches!(status, Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)) {
            let spec = TimeToLiveSpecification::builder()
                .attribute_name(TTL_ATTRIBUTE)
                .enabled(true)
                .build()
                .map_err(build_error)?;
            client
                .update_time_to_live()
                .table_name(table)
                .time_to_live_specification(spec)
                .send()
                .await
                .map_err(|error| unavailable("UpdateTimeToLive", &error))?;
        }
        Ok(!exists)
    }

    /// Puts every user item that lacks `userList` (written before the `users` index
    /// existed) into the index: one scan of the table, then one conditional
    /// `UpdateItem` per such user. Returns (users seen, users added). Safe to repeat.
    pub async fn reindex_users(&self) -> Result<(usize, usize), StoreError> {
        let items = self.scan_users(Some("pk, userList")).await?;
        let mut added = 0;
        for item in items.iter().filter(|item| !item.contains_key("userList")) {
            let Some(pk) = item.get("pk") else { continue };
            let outcome = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", pk.clone())
                .update_expression("SET userList = :u")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":u", s(USER_LIST))
                .send()
                .await;
            match outcome {
                Ok(_) => added += 1,
                Err(error) if is_update_condition_failure(&error) => {}
                Err(error) => return Err(unavailable("UpdateItem", &error)),
            }
        }
        Ok((items.len(), added))
    }

    /// Every user item (a paginated `Scan` of the whole table), of `projection` only
    /// when given: administration only.
    async fn scan_users(&self, projection: Option<&str>) -> Result<Vec<Item>, StoreError> {
        self.client
            .scan()
            .table_name(&self.table)
            .filter_expression("begins_with(pk, :user)")
            .set_projection_expression(projection.map(str::to_owned))
            .expression_attribute_values(":user", s(USER_PREFIX))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<Item>, _>>()
            .await
            .map_err(|error| unavailable("Scan", &error))
    }

    /// One strongly consistent `BatchGetItem` of the items with these partition keys
    /// (at most 100), of `attributes` only; unprocessed keys (throttling) are an error.
    async fn batch_get(&self, keys: Vec<String>, attributes: &[&str]) -> Result<Vec<Item>, StoreError> {
        let (projection, names) = projection(attributes);
        let keys = keys.into_iter().map(|pk| HashMap::from([("pk".to_owned(), s(pk))])).collect();
        let keys = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .projection_expression(projection)
            .set_expression_attribute_names(Some(names))
            .consistent_read(true)
            .build()
            .map_err(build_error)?;
        let output = self
            .client
            .batch_get_item()
            .request_items(&self.table, keys)
            .send()
            .await
            .map_err(|error| unavailable("BatchGetItem", &error))?;
        if output.unprocessed_keys().is_some_and(|unprocessed| !unprocessed.is_empty()) {
            return Err(StoreError::Unavailable("BatchGetItem: unprocessed keys (throttled)".to_owned()));
        }
        let mut responses = output.responses;
        Ok(responses.as_mut().and_then(|tables| tables.remove(&self.table)).unwrap_or_default())
    }

    /// One strongly consistent `GetItem` by partition key, of `attributes` only
    /// when given.
    async fn get_item(&self, pk: AttributeValue, attributes: Option<&[&str]>) -> Result<Option<Item>, StoreError> {
        let (projection, names) = attributes.map(projection).unzip();
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", pk)
            .consistent_read(true)
            .set_projection_expression(projection)
            .set_expression_attribute_names(names)
            .send()
            .await
            .map_err(|error| unavailable("GetItem", &error))?;
        Ok(output.item().cloned())
    }

    async fn update_user(
        &self,
        email: &str,
        expression: &str,
        names: Vec<(&str, &str)>,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<(), StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("{USER_PREFIX}{email}")))
            .update_expression(expression)
            .condition_expression("attribute_exists(pk)");
        for (placeholder, name) in names {
            request = request.expression_attribute_names(placeholder, name);
        }
        for (placeholder, value) in values {
            request = request.expression_attribute_values(placeholder, value);
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(error) if is_update_condition_failure(&error) => Err(StoreError::NotFound),
            Err(error) => Err(unavailable("UpdateItem", &error)),
        }
    }
}

#[async_trait]
impl UserStore for DynamoStore {
    async fn get_user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        self.get_item(s(format!("{USER_PREFIX}{email}")), None).await?.as_ref().map(user_from_item).transpose()
    }

    async fn user_standing(&self, email: &str) -> Result<Option<UserStanding>, StoreError> {
        let pk = s(format!("{USER_PREFIX}{email}"));
        self.get_item(pk, Some(&USER_STANDING_ATTRIBUTES)).await?.as_ref().map(standing_from_item).transpose()
    }

    /// The index names the email (it holds no password hash), then the user is read.
    async fn get_user_by_id(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(USER_INDEX)
            .key_condition_expression("userId = :u AND gsi1sk = :user")
            .expression_attribute_values(":u", s(user_id))
            .expression_attribute_values(":user", s(USER_SORT_KEY))
            .projection_expression("email")
            .send()
            .await
            .map_err(|error| unavailable("Query", &error))?;
        let Some(email) = output.items().first().map(|item| get_s(item, "email")).transpose()? else {
            return Ok(None);
        };
        Ok(self.get_user_by_email(&email).await?.filter(|user| user.id == user_id))
    }

    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        put_new_user(self.put_user(user).condition_expression("attribute_not_exists(pk)")).await
    }

    async fn set_password(&self, email: &str, password_hash: &str, now: u64) -> Result<(), StoreError> {
        self.update_user(
            email,
            "SET passwordHash = :h, passwordChangedAt = :now ADD sessionEpoch :one",
            vec![],
            vec![(":h", s(password_hash)), (":now", n(now)), (":one", n(1))],
        )
        .await
    }

    async fn end_sessions(&self, email: &str) -> Result<(), StoreError> {
        self.update_user(email, "ADD sessionEpoch :one", vec![], vec![(":one", n(1))]).await
    }

    async fn upgrade_password_hash(&self, email: &str, current_hash: &str, new_hash: &str) -> Result<bool, StoreError> {
        let outcome = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("{USER_PREFIX}{email}")))
            .update_expression("SET passwordHash = :new")
            .condition_expression("passwordHash = :current")
            .expression_attribute_values(":new", s(new_hash))
            .expression_attribute_values(":current", s(current_hash))
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(true),
            Err(error) if is_update_condition_failure(&error) => Ok(false),
            Err(error) => Err(unavailable("UpdateItem", &error)),
        }
    }

    async fn set_role(&self, email: &str, role: &str) -> Result<(), StoreError> {
        // ROLE is a DynamoDB reserved word.
        self.update_user(email, "SET #role = :r", vec![("#role", "role")], vec![(":r", s(role))]).await
    }

    async fn set_disabled(&self, email: &str, disabled: bool) -> Result<(), StoreError> {
        self.update_user(email, "SET disabled = :d", vec![], vec![(":d", AttributeValue::Bool(disabled))]).await
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let pages = self.scan_users(None).await?;
        let mut users = pages.iter().map(user_from_item).collect::<Result<Vec<_>, _>>()?;
        users.sort_by(|a, b| a.email.cmp(&b.email));
        Ok(users)
    }

    /// One `Query` of `limit + 1` items: the extra one only tells whether more follow.
    async fn users_page(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<UsersPage, StoreError> {
        let mut names: Vec<&str> = vec!["userList", "email"];
        names.extend(USERS_INDEX_ATTRIBUTES);
        let (attributes, placeholders) = projection(&names);
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(USERS_INDEX)
            .projection_expression(attributes)
            .set_expression_attribute_names(Some(placeholders))
            .expression_attribute_values(":u", s(USER_LIST))
            .limit(i32::try_from(limit.saturating_add(1)).unwrap_or(i32::MAX));
        request = if prefix.is_empty() {
            request.key_condition_expression("userList = :u")
        } else {
            request
                .key_condition_expression("userList = :u AND begins_with(email, :prefix)")
                .expression_attribute_values(":prefix", s(prefix))
        };
        if let Some(after) = after {
            request = request.set_exclusive_start_key(Some(HashMap::from([
                ("pk".to_owned(), s(format!("{USER_PREFIX}{after}"))),
                ("userList".to_owned(), s(USER_LIST)),
                ("email".to_owned(), s(after)),
            ])));
        }
        let output = request.send().await.map_err(|error| unavailable("Query", &error))?;
        let mut users = output.items().iter().map(listed_from_item).collect::<Result<Vec<_>, _>>()?;
        let more = users.len() > limit;
        users.truncate(limit);
        let last = if more { users.last().map(|user| user.email.clone()) } else { None };
        Ok(UsersPage { users, last })
    }

    async fn admin_set(&self) -> Result<Option<Vec<String>>, StoreError> {
        let Some(item) = self.get_item(s(ADMINS_KEY), Some(&["pk", "ids"])).await? else { return Ok(None) };
        match item.get("ids") {
            None => Ok(Some(Vec::new())),
            Some(AttributeValue::Ss(ids)) => Ok(Some(ids.clone())),
            Some(_) => Err(StoreError::Corrupt("ids is not a string set".to_owned())),
        }
    }

    async fn init_admin_set(&self, ids: &[String]) -> Result<(), StoreError> {
        let mut item = HashMap::from([("pk".to_owned(), s(ADMINS_KEY))]);
        if !ids.is_empty() {
            item.insert("ids".to_owned(), AttributeValue::Ss(ids.to_vec()));
        }
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)");
        match put.send().await {
            Ok(_) => Ok(()),
            Err(error)
                if matches!(error.as_service_error(), Some(PutItemError::ConditionalCheckFailedException(_))) =>
            {
                Ok(())
            }
            Err(error) => Err(unavailable("PutItem", &error)),
        }
    }

    async fn change_standing(
        &self,
        read: &User,
        change: &StandingChange,
        membership: Membership,
    ) -> Result<StandingOutcome, StoreError> {
        let key = s(format!("{USER_PREFIX}{}", read.email));
        let as_read = if read.disabled {
            "userId = :id AND #role = :was AND disabled = :true"
        } else {
            "userId = :id AND #role = :was AND (attribute_not_exists(disabled) OR disabled = :false)"
        };
        let mut values = HashMap::from([(":id".to_owned(), s(&read.id)), (":was".to_owned(), s(&read.role))]);
        values.insert(if read.disabled { ":true" } else { ":false" }.to_owned(), AttributeValue::Bool(read.disabled));
        let names = HashMap::from([("#role".to_owned(), "role".to_owned())]);
        let user = match change {
            StandingChange::Delete => TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name(&self.table)
                        .key("pk", key)
                        .condition_expression(as_read)
                        .set_expression_attribute_names(Some(names))
                        .set_expression_attribute_values(Some(values))
                        .build()
                        .map_err(build_error)?,
                )
                .build(),
            StandingChange::Update { role, disabled } => {
                let mut sets = Vec::new();
                if let Some(role) = role {
                    sets.push("#role = :role");
                    values.insert(":role".to_owned(), s(role));
                }
                if let Some(disabled) = disabled {
                    sets.push("disabled = :disabled");
                    values.insert(":disabled".to_owned(), AttributeValue::Bool(*disabled));
                }
                // Always a valid update: SET the id to itself when nothing else changes.
                sets.push("userId = :id");
                let mut expression = format!("SET {}", sets.join(", "));
                if *disabled == Some(true) {
                    expression.push_str(" ADD sessionEpoch :one");
                    values.insert(":one".to_owned(), n(1));
                }
                update_item(
                    Update::builder()
                        .table_name(&self.table)
                        .key("pk", key)
                        .update_expression(expression)
                        .condition_expression(as_read)
                        .set_expression_attribute_names(Some(names))
                        .set_expression_attribute_values(Some(values))
                        .build()
                        .map_err(build_error)?,
                )
            }
        };
        let me = AttributeValue::Ss(vec![read.id.clone()]);
        let admins = match membership {
            Membership::Same => None,
            Membership::Join => Some(
                Update::builder()
                    .table_name(&self.table)
                    .key("pk", s(ADMINS_KEY))
                    .update_expression("ADD ids :me")
                    .expression_attribute_values(":me", me),
            ),
            Membership::Leave => Some(
                Update::builder()
                    .table_name(&self.table)
                    .key("pk", s(ADMINS_KEY))
                    .update_expression("DELETE ids :me")
                    .condition_expression("size(ids) > :one OR NOT contains(ids, :id)")
                    .expression_attribute_values(":me", me)
                    .expression_attribute_values(":one", n(1))
                    .expression_attribute_values(":id", s(&read.id)),
            ),
        };
        let mut items = vec![user];
        if let Some(admins) = admins {
            items.push(update_item(admins.build().map_err(build_error)?));
        }
        match self.transact_codes(items).await? {
            None => Ok(StandingOutcome::Applied),
            Some(codes) if codes.first().is_some_and(|code| code == "ConditionalCheckFailed") => {
                Ok(StandingOutcome::Changed)
            }
            Some(codes) if codes.get(1).is_some_and(|code| code == "ConditionalCheckFailed") => {
                Ok(StandingOutcome::LastAdmin)
            }
            // A concurrent transaction on the same items won: as if the user changed.
            Some(_) => Ok(StandingOutcome::Changed),
        }
    }
}

#[async_trait]
impl SessionStore for DynamoStore {
    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(session_to_item(session)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map(|_| ())
            .map_err(|error| unavailable("PutItem", &error))
    }

    async fn get_session(&self, session_id: &SessionId) -> Result<Option<Session>, StoreError> {
        let pk = s(format!("{SESSION_PREFIX}{session_id}"));
        self.get_item(pk, Some(&SESSION_ATTRIBUTES)).await?.as_ref().map(session_from_item).transpose()
    }

    async fn rotate_session(
        &self,
        session_id: &SessionId,
        generation: u64,
        now: u64,
        idle_secs: u64,
        role: &str,
        client: &ClientInfo,
    ) -> Result<RotateOutcome, StoreError> {
        let Some(next) = generation.checked_add(1) else {
            return Ok(RotateOutcome::Conflict(self.get_session(session_id).await?));
        };
        let idle_expires_at = now.saturating_add(idle_secs);
        let (client_update, client_values) = client_sets(client);
        let outcome = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("{SESSION_PREFIX}{session_id}")))
            .update_expression(format!(
                "SET #gen = :next, rotatedAt = :now, idleExpiresAt = :idle, #ttl = :idle, #role = :role{client_update}"
            ))
            .set_expression_attribute_values(Some(client_values))
            .condition_expression(
                "attribute_exists(pk) AND #gen = :g AND attribute_not_exists(revokedAt) \
                 AND idleExpiresAt > :now AND absExpiresAt > :now",
            )
            .expression_attribute_names("#gen", "gen")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_names("#role", "role")
            .expression_attribute_values(":g", n(generation))
            .expression_attribute_values(":next", n(next))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":idle", n(idle_expires_at))
            .expression_attribute_values(":role", s(role))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match outcome {
            Ok(output) => {
                let item = output
                    .attributes()
                    .ok_or_else(|| StoreError::Corrupt("UpdateItem returned no attributes".to_owned()))?;
                Ok(RotateOutcome::Rotated(session_from_item(item)?))
            }
            Err(error) => match error.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                    let old = failed.item().map(session_from_item).transpose()?;
                    Ok(RotateOutcome::Conflict(old))
                }
                _ => Err(unavailable("UpdateItem", &error)),
            },
        }
    }

    async fn revoke_session(
        &self,
        session_id: &SessionId,
        now: u64,
        reason: &str,
    ) -> Result<Option<Session>, StoreError> {
        let outcome = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("{SESSION_PREFIX}{session_id}")))
            .update_expression(
                "SET revokedAt = if_not_exists(revokedAt, :now), revokeReason = if_not_exists(revokeReason, :why)",
            )
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":why", s(reason))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match outcome {
            Ok(output) => output.attributes().map(session_from_item).transpose(),
            Err(error) if is_update_condition_failure(&error) => Ok(None),
            Err(error) => Err(unavailable("UpdateItem", &error)),
        }
    }

    async fn get_sessions(&self, session_ids: &[SessionId]) -> Result<Vec<Session>, StoreError> {
        if session_ids.is_empty() {
            return Ok(Vec::new());
        }
        if session_ids.len() > MAX_SESSIONS_READ {
            return Err(StoreError::Unavailable(format!("at most {MAX_SESSIONS_READ} sessions per read")));
        }
        let keys = session_ids.iter().map(|id| format!("{SESSION_PREFIX}{id}")).collect();
        let items = self.batch_get(keys, &SESSION_LIST_ATTRIBUTES).await?;
        items.iter().map(session_from_item).collect()
    }

    async fn end_other_sessions(
        &self,
        email: &str,
        epoch: u64,
        keep: &SessionId,
        now: u64,
    ) -> Result<bool, StoreError> {
        let next = epoch.saturating_add(1);
        let user = Update::builder()
            .table_name(&self.table)
            .key("pk", s(format!("{USER_PREFIX}{email}")))
            .update_expression("SET sessionEpoch = :next")
            .condition_expression(
                "attribute_exists(pk) AND (sessionEpoch = :epoch OR attribute_not_exists(sessionEpoch))",
            )
            .expression_attribute_values(":epoch", n(epoch))
            .expression_attribute_values(":next", n(next))
            .build()
            .map_err(build_error)?;
        let session = Update::builder()
            .table_name(&self.table)
            .key("pk", s(format!("{SESSION_PREFIX}{keep}")))
            .update_expression("SET userEpoch = :next")
            .condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(revokedAt) AND idleExpiresAt > :now \
                 AND absExpiresAt > :now AND (userEpoch = :epoch OR attribute_not_exists(userEpoch))",
            )
            .expression_attribute_values(":epoch", n(epoch))
            .expression_attribute_values(":next", n(next))
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(build_error)?;
        self.transact(vec![update_item(user), update_item(session)]).await
    }

    async fn list_user_sessions(&self, user_id: &str) -> Result<Vec<Session>, StoreError> {
        let (attributes, names) = projection(&SESSION_INDEX_READ);
        let items = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(USER_INDEX)
            .key_condition_expression("userId = :u AND begins_with(gsi1sk, :session)")
            .projection_expression(attributes)
            .set_expression_attribute_names(Some(names))
            .expression_attribute_values(":u", s(user_id))
            .expression_attribute_values(":session", s(SESSION_PREFIX))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<Item>, _>>()
            .await
            .map_err(|error| unavailable("Query", &error))?;
        let mut sessions = items.iter().map(session_from_item).collect::<Result<Vec<_>, _>>()?;
        sessions.sort_by_key(|session| (session.created_at, session.id));
        Ok(sessions)
    }
}

#[async_trait]
impl SessionLookup for DynamoStore {
    /// One `BatchGetItem` of both items, strongly consistent, of the session's
    /// attributes and the user's standing only.
    async fn session_and_user(
        &self,
        session_id: &SessionId,
        email: &str,
    ) -> Result<(Option<Session>, Option<UserStanding>), StoreError> {
        let mut attributes: Vec<&str> = SESSION_ATTRIBUTES.to_vec();
        attributes.extend(USER_STANDING_ATTRIBUTES.iter().filter(|name| !SESSION_ATTRIBUTES.contains(name)));
        let keys = vec![format!("{SESSION_PREFIX}{session_id}"), format!("{USER_PREFIX}{email}")];
        let items = self.batch_get(keys, &attributes).await?;
        let with_prefix = |prefix: &str| {
            items.iter().find(|item| matches!(item.get("pk"), Some(AttributeValue::S(pk)) if pk.starts_with(prefix)))
        };
        let session = with_prefix(SESSION_PREFIX).map(session_from_item).transpose()?;
        let user = with_prefix(USER_PREFIX).map(standing_from_item).transpose()?;
        Ok((session, user))
    }
}

#[async_trait]
impl LoginAttemptStore for DynamoStore {
    async fn failures(&self, email: &str, window: u64) -> Result<u32, StoreError> {
        let item = self.get_item(attempts_key(email, window), None).await?;
        item.as_ref().map(|item| get_n(item, "failures")).transpose().map(|n| count(n.unwrap_or(0)))
    }

    async fn record_failure(&self, email: &str, window: u64, expires_at: u64) -> Result<u32, StoreError> {
        self.add_one(attempts_key(email, window), "failures", expires_at).await
    }

    async fn bump(&self, name: &str, window: u64, expires_at: u64) -> Result<u32, StoreError> {
        self.add_one(s(format!("{COUNT_PREFIX}{name}#{window}")), "count", expires_at).await
    }

    async fn clear_failures(&self, email: &str, window: u64) -> Result<(), StoreError> {
        self.delete_key(attempts_key(email, window)).await
    }

    async fn forget(&self, name: &str, window: u64) -> Result<(), StoreError> {
        self.delete_key(s(format!("{COUNT_PREFIX}{name}#{window}"))).await
    }
}

impl DynamoStore {
    /// Deletes the item `key` (one `DeleteItem`; a missing item is not an error).
    async fn delete_key(&self, key: AttributeValue) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", key)
            .send()
            .await
            .map(|_| ())
            .map_err(|error| unavailable("DeleteItem", &error))
    }

    /// Adds one to `attribute` of the counter item `key`, which expires at
    /// `expires_at` (one `UpdateItem`); the new value.
    async fn add_one(&self, key: AttributeValue, attribute: &str, expires_at: u64) -> Result<u32, StoreError> {
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", key)
            .update_expression("ADD #count :one SET #ttl = :expires")
            .expression_attribute_names("#count", attribute)
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":expires", n(expires_at))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|error| unavailable("UpdateItem", &error))?;
        let attributes = output.attributes().ok_or_else(|| StoreError::Corrupt(format!("no {attribute} returned")))?;
        get_n(attributes, attribute).map(count)
    }

    /// A `PutItem` of `user`'s item, for the caller to add its condition.
    fn put_user(&self, user: &User) -> PutItemFluentBuilder {
        self.client.put_item().table_name(&self.table).set_item(Some(user_to_item(user)))
    }
}

/// Sends a conditional put of a new user: a failed condition is an email that
/// already has an account.
async fn put_new_user(put: PutItemFluentBuilder) -> Result<(), StoreError> {
    match put.send().await {
        Ok(_) => Ok(()),
        Err(error) if matches!(error.as_service_error(), Some(PutItemError::ConditionalCheckFailedException(_))) => {
            Err(StoreError::DuplicateEmail)
        }
        Err(error) => Err(unavailable("PutItem", &error)),
    }
}

#[async_trait]
impl CredentialStore for DynamoStore {
    async fn create_signup(&self, user: &User, now: u64) -> Result<(), StoreError> {
        let put = self
            .put_user(user)
            .condition_expression("attribute_not_exists(pk) OR (emailVerified = :false AND pendingExpiresAt <= :now)")
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":now", n(now));
        put_new_user(put).await
    }

    async fn issue_secret(&self, record: &SecretRecord) -> Result<(), StoreError> {
        let item = HashMap::from([
            ("pk".to_owned(), secret_key(record.purpose, &record.hash)),
            ("userId".to_owned(), s(&record.user_id)),
            ("email".to_owned(), s(&record.email)),
            ("expiresAt".to_owned(), n(record.expires_at)),
            (TTL_ATTRIBUTE.to_owned(), n(record.expires_at.saturating_add(TIDY_AFTER_SECS))),
        ]);
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        let point = Update::builder()
            .table_name(&self.table)
            .key("pk", s(format!("{USER_PREFIX}{}", record.email)))
            .update_expression("SET #pointer = :hash")
            .condition_expression("attribute_exists(pk) AND userId = :user")
            .expression_attribute_names("#pointer", pointer(record.purpose))
            .expression_attribute_values(":hash", s(&record.hash))
            .expression_attribute_values(":user", s(&record.user_id))
            .build()
            .map_err(build_error)?;
        match self.transact(vec![TransactWriteItem::builder().put(put).build(), update_item(point)]).await? {
            true => Ok(()),
            false => Err(StoreError::NotFound),
        }
    }

    async fn secret(&self, purpose: Purpose, hash: &str) -> Result<Option<SecretRecord>, StoreError> {
        let Some(item) = self.get_item(secret_key(purpose, hash), None).await? else {
            return Ok(None);
        };
        Ok(Some(SecretRecord {
            purpose,
            hash: hash.to_owned(),
            user_id: get_s(&item, "userId")?,
            email: get_s(&item, "email")?,
            expires_at: get_n(&item, "expiresAt")?,
        }))
    }

    async fn spend_secret(
        &self,
        record: &SecretRecord,
        now: u64,
        change: &CredentialChange,
    ) -> Result<bool, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("pk", secret_key(record.purpose, &record.hash))
            .condition_expression("attribute_exists(pk) AND expiresAt > :now")
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(build_error)?;
        let user = Update::builder()
            .table_name(&self.table)
            .key("pk", s(format!("{USER_PREFIX}{}", record.email)))
            .condition_expression("#pointer = :hash AND userId = :user")
            .expression_attribute_names("#pointer", pointer(record.purpose))
            .expression_attribute_values(":hash", s(&record.hash))
            .expression_attribute_values(":user", s(&record.user_id));
        let user = match change {
            CredentialChange::SetPassword { password_hash } => user
                .update_expression(
                    "SET passwordHash = :h, passwordChangedAt = :now, emailVerified = :true \
                     ADD sessionEpoch :one REMOVE #pointer, pendingExpiresAt, #ttl",
                )
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_values(":true", AttributeValue::Bool(true))
                .expression_attribute_values(":h", s(password_hash))
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":one", n(1)),
            CredentialChange::VerifyEmail => user
                .update_expression("SET emailVerified = :true REMOVE #pointer, pendingExpiresAt, #ttl")
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_values(":true", AttributeValue::Bool(true)),
            CredentialChange::Totp(change) => {
                let totp = totp_update(change);
                let user = user
                    .update_expression(totp.expression(&["#pointer"]))
                    .condition_expression(format!("#pointer = :hash AND userId = :user AND ({})", totp.condition));
                totp.values.into_iter().fold(user, |user, (name, value)| user.expression_attribute_values(name, value))
            }
        };
        let user = user.build().map_err(build_error)?;
        self.transact(vec![TransactWriteItem::builder().delete(delete).build(), update_item(user)]).await
    }

    async fn change_password_keeping_session(&self, change: &PasswordChange) -> Result<bool, StoreError> {
        let next_epoch = change.epoch.saturating_add(1);
        let user = Update::builder()
            .table_name(&self.table)
            .key("pk", s(format!("{USER_PREFIX}{}", change.email)))
            .update_expression("SET passwordHash = :new, passwordChangedAt = :now, sessionEpoch = :next")
            .condition_expression(
                "passwordHash = :current AND (sessionEpoch = :epoch OR attribute_not_exists(sessionEpoch))",
            )
            .expression_attribute_values(":new", s(&change.new_hash))
            .expression_attribute_values(":current", s(&change.current_hash))
            .expression_attribute_values(":now", n(change.now))
            .expression_attribute_values(":epoch", n(change.epoch))
            .expression_attribute_values(":next", n(next_epoch))
            .build()
            .map_err(build_error)?;
        let idle = change.now.saturating_add(change.idle_secs);
        let session = Update::builder()
            .table_name(&self.table)
            .key("pk", s(format!("{SESSION_PREFIX}{}", change.session_id)))
            .update_expression(
                "SET userEpoch = :next, #gen = :g1, rotatedAt = :now, idleExpiresAt = :idle, #ttl = :idle",
            )
            .condition_expression(
                "#gen = :g AND attribute_not_exists(revokedAt) AND idleExpiresAt > :now AND absExpiresAt > :now",
            )
            .expression_attribute_names("#gen", "gen")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":next", n(next_epoch))
            .expression_attribute_values(":g", n(change.generation))
            .expression_attribute_values(":g1", n(change.generation.saturating_add(1)))
            .expression_attribute_values(":now", n(change.now))
            .expression_attribute_values(":idle", n(idle))
            .build()
            .map_err(build_error)?;
        self.transact(vec![update_item(user), update_item(session)]).await
    }

    async fn update_totp(&self, email: &str, user_id: &str, change: &TotpChange) -> Result<bool, StoreError> {
        let totp = totp_update(change);
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("{USER_PREFIX}{email}")))
            .update_expression(totp.expression(&[]))
            .condition_expression(format!("userId = :user AND ({})", totp.condition))
            .expression_attribute_values(":user", s(user_id));
        let update = totp
            .values
            .into_iter()
            .fold(update, |update, (name, value)| update.expression_attribute_values(name, value));
        match update.send().await {
            Ok(_) => Ok(true),
            Err(error) if is_update_condition_failure(&error) => Ok(false),
            Err(error) => Err(unavailable("UpdateItem", &error)),
        }
    }
}

/// A [`TotpChange`] as DynamoDB expressions: its `SET`, `REMOVE` and `DELETE`
/// clauses, the condition it needs, and the values they name.
struct TotpUpdate {
    set: &'static str,
    remove: &'static [&'static str],
    delete: &'static str,
    condition: &'static str,
    values: Vec<(&'static str, AttributeValue)>,
}

impl TotpUpdate {
    /// The update expression, with `also_remove` added to its `REMOVE` clause (each
    /// clause keyword may appear once).
    fn expression(&self, also_remove: &[&str]) -> String {
        let removed: Vec<&str> = self.remove.iter().chain(also_remove).copied().collect();
        let clauses = [
            (!self.set.is_empty()).then(|| format!("SET {}", self.set)),
            (!removed.is_empty()).then(|| format!("REMOVE {}", removed.join(", "))),
            (!self.delete.is_empty()).then(|| format!("DELETE {}", self.delete)),
        ];
        clauses.into_iter().flatten().collect::<Vec<_>>().join(" ")
    }
}

/// Every attribute of a second factor.
const TOTP_ATTRIBUTES: &[&str] = &["totpSecret", "totpPending", "totpStep", "recoveryCodes", "mfaEnabledAt"];

fn totp_update(change: &TotpChange) -> TotpUpdate {
    let none = TotpUpdate { set: "", remove: &[], delete: "", condition: "", values: Vec::new() };
    match change {
        TotpChange::Begin { pending } => TotpUpdate {
            set: "totpPending = :pending",
            condition: "attribute_not_exists(totpSecret)",
            values: vec![(":pending", s(pending))],
            ..none
        },
        TotpChange::Confirm { pending, step, recovery, now } => TotpUpdate {
            set: "totpSecret = :pending, totpStep = :step, recoveryCodes = :codes, mfaEnabledAt = :now",
            remove: &["totpPending"],
            condition: "totpPending = :pending AND attribute_not_exists(totpSecret)",
            values: vec![
                (":pending", s(pending)),
                (":step", n(*step)),
                (":codes", AttributeValue::Ss(recovery.clone())),
                (":now", n(*now)),
            ],
            ..none
        },
        TotpChange::Step { step } => TotpUpdate {
            set: "totpStep = :step",
            condition: "attribute_exists(totpSecret) AND (attribute_not_exists(totpStep) OR totpStep < :step)",
            values: vec![(":step", n(*step))],
            ..none
        },
        TotpChange::Recovery { hash } => TotpUpdate {
            delete: "recoveryCodes :codes",
            condition: "attribute_exists(totpSecret) AND contains(recoveryCodes, :code)",
            values: vec![(":codes", AttributeValue::Ss(vec![hash.clone()])), (":code", s(hash))],
            ..none
        },
        TotpChange::Remove { secret: Some(secret) } => TotpUpdate {
            remove: TOTP_ATTRIBUTES,
            condition: "totpSecret = :secret",
            values: vec![(":secret", s(secret))],
            ..none
        },
        TotpChange::Remove { secret: None } => {
            TotpUpdate { remove: TOTP_ATTRIBUTES, condition: "attribute_exists(userId)", ..none }
        }
    }
}

impl DynamoStore {
    /// One `TransactWriteItems`: `Ok(None)` when it committed; when it was cancelled
    /// because a condition failed or a concurrent transaction won, each item's
    /// cancellation code (`None` for the items that were not the reason).
    async fn transact_codes(&self, items: Vec<TransactWriteItem>) -> Result<Option<Vec<String>>, StoreError> {
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(None),
            Err(error) => match error.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                    let codes: Vec<String> = cancelled
                        .cancellation_reasons()
                        .iter()
                        .map(|reason| reason.code().unwrap_or_default().to_owned())
                        .collect();
                    let lost = codes
                        .iter()
                        .any(|code| matches!(code.as_str(), "ConditionalCheckFailed" | "TransactionConflict"));
                    if lost { Ok(Some(codes)) } else { Err(unavailable("TransactWriteItems", &error)) }
                }
                _ => Err(unavailable("TransactWriteItems", &error)),
            },
        }
    }

    /// One `TransactWriteItems`: `Ok(true)` when it committed, `Ok(false)` when it
    /// was cancelled because a condition failed or a concurrent transaction on the
    /// same items won (the caller's answer to both is the same).
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<bool, StoreError> {
        Ok(self.transact_codes(items).await?.is_none())
    }
}

fn update_item(update: Update) -> TransactWriteItem {
    TransactWriteItem::builder().update(update).build()
}

fn secret_key(purpose: Purpose, hash: &str) -> AttributeValue {
    s(format!("{SECRET_PREFIX}{}#{hash}", purpose.code()))
}

/// The user attribute holding the hash of the newest secret of `purpose`.
fn pointer(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Password => "passwordSecret",
        Purpose::Verify => "verifySecret",
        Purpose::Mfa => "mfaSecret",
    }
}

fn attempts_key(email: &str, window: u64) -> AttributeValue {
    s(format!("{ATTEMPTS_PREFIX}{email}#{window}"))
}

fn count(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

fn is_update_condition_failure<R>(error: &SdkError<UpdateItemError, R>) -> bool {
    matches!(error.as_service_error(), Some(UpdateItemError::ConditionalCheckFailedException(_)))
}

fn unavailable<E, R>(operation: &str, error: &SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Unavailable(format!("{operation}: {}", DisplayErrorContext(error)))
}

fn build_error(error: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Unavailable(format!("request build: {error}"))
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn user_to_item(user: &User) -> Item {
    let mut item = HashMap::from([
        ("pk".to_owned(), s(format!("{USER_PREFIX}{}", user.email))),
        ("gsi1sk".to_owned(), s(USER_SORT_KEY)),
        ("userList".to_owned(), s(USER_LIST)),
        ("userId".to_owned(), s(&user.id)),
        ("email".to_owned(), s(&user.email)),
        ("role".to_owned(), s(&user.role)),
        ("disabled".to_owned(), AttributeValue::Bool(user.disabled)),
        ("passwordChangedAt".to_owned(), n(user.password_changed_at)),
        ("sessionEpoch".to_owned(), n(user.session_epoch)),
        ("createdAt".to_owned(), n(user.created_at)),
        ("emailVerified".to_owned(), AttributeValue::Bool(user.email_verified)),
    ]);
    // An invited user has no password yet: no attribute, rather than an empty one.
    if user.has_password() {
        item.insert("passwordHash".to_owned(), s(&user.password_hash));
    }
    if let Some(at) = user.pending_expires_at {
        item.insert("pendingExpiresAt".to_owned(), n(at));
        item.insert(TTL_ATTRIBUTE.to_owned(), n(at.saturating_add(TIDY_AFTER_SECS)));
    }
    let totp = &user.totp;
    if let Some(secret) = &totp.secret {
        item.insert("totpSecret".to_owned(), s(secret));
        item.insert("totpStep".to_owned(), n(totp.last_step));
    }
    if let Some(pending) = &totp.pending {
        item.insert("totpPending".to_owned(), s(pending));
    }
    if !totp.recovery.is_empty() {
        item.insert("recoveryCodes".to_owned(), AttributeValue::Ss(totp.recovery.clone()));
    }
    if let Some(at) = totp.enabled_at {
        item.insert("mfaEnabledAt".to_owned(), n(at));
    }
    item
}

fn user_from_item(item: &Item) -> Result<User, StoreError> {
    Ok(User {
        id: get_s(item, "userId")?,
        email: get_s(item, "email")?,
        password_hash: item.get("passwordHash").map(|_| get_s(item, "passwordHash")).transpose()?.unwrap_or_default(),
        role: get_s(item, "role")?,
        disabled: get_bool_or_false(item, "disabled")?,
        password_changed_at: get_n(item, "passwordChangedAt")?,
        // Items written before epochs existed have none: epoch 0.
        session_epoch: get_n_or_zero(item, "sessionEpoch")?,
        created_at: get_n(item, "createdAt")?,
        // Users written before the field existed were made by operators: verified.
        email_verified: match item.get("emailVerified") {
            None => true,
            Some(_) => get_bool_or_false(item, "emailVerified")?,
        },
        pending_expires_at: item.get("pendingExpiresAt").map(|_| get_n(item, "pendingExpiresAt")).transpose()?,
        totp: TotpState {
            secret: item.get("totpSecret").map(|_| get_s(item, "totpSecret")).transpose()?,
            pending: item.get("totpPending").map(|_| get_s(item, "totpPending")).transpose()?,
            last_step: get_n_or_zero(item, "totpStep")?,
            recovery: match item.get("recoveryCodes") {
                None => Vec::new(),
                Some(AttributeValue::Ss(hashes)) => hashes.clone(),
                Some(_) => return Err(StoreError::Corrupt("recoveryCodes is not a string set".to_owned())),
            },
            enabled_at: item.get("mfaEnabledAt").map(|_| get_n(item, "mfaEnabledAt")).transpose()?,
        },
    })
}

fn listed_from_item(item: &Item) -> Result<ListedUser, StoreError> {
    Ok(ListedUser {
        id: get_s(item, "userId")?,
        email: get_s(item, "email")?,
        role: get_s(item, "role")?,
        disabled: get_bool_or_false(item, "disabled")?,
        created_at: get_n(item, "createdAt")?,
        email_verified: match item.get("emailVerified") {
            None => true,
            Some(_) => get_bool_or_false(item, "emailVerified")?,
        },
    })
}

fn standing_from_item(item: &Item) -> Result<UserStanding, StoreError> {
    Ok(UserStanding {
        id: get_s(item, "userId")?,
        email: get_s(item, "email")?,
        role: get_s(item, "role")?,
        disabled: get_bool_or_false(item, "disabled")?,
        session_epoch: get_n_or_zero(item, "sessionEpoch")?,
    })
}

/// A `ProjectionExpression` of `attributes`, each behind a placeholder name (some,
/// such as `role`, are DynamoDB reserved words), and the placeholders' names.
fn projection(attributes: &[&str]) -> (String, HashMap<String, String>) {
    let placeholders: Vec<String> = (0..attributes.len()).map(|i| format!("#p{i}")).collect();
    let names = placeholders.iter().cloned().zip(attributes.iter().map(|name| (*name).to_owned())).collect();
    (placeholders.join(", "), names)
}

fn session_to_item(session: &Session) -> Item {
    let mut item = HashMap::from([
        ("pk".to_owned(), s(format!("{SESSION_PREFIX}{}", session.id))),
        ("gsi1sk".to_owned(), s(format!("{SESSION_PREFIX}{}", session.id))),
        ("sessionId".to_owned(), s(session.id.to_string())),
        ("userId".to_owned(), s(&session.user_id)),
        ("email".to_owned(), s(&session.email)),
        ("userEpoch".to_owned(), n(session.user_epoch)),
        ("gen".to_owned(), n(session.generation)),
        ("createdAt".to_owned(), n(session.created_at)),
        ("rotatedAt".to_owned(), n(session.rotated_at)),
        ("idleExpiresAt".to_owned(), n(session.idle_expires_at)),
        ("absExpiresAt".to_owned(), n(session.absolute_expires_at)),
        (TTL_ATTRIBUTE.to_owned(), n(session.expires_at())),
    ]);
    if let Some(revoked_at) = session.revoked_at {
        item.insert("revokedAt".to_owned(), n(revoked_at));
    }
    if let Some(reason) = &session.revoke_reason {
        item.insert("revokeReason".to_owned(), s(reason));
    }
    if let Some(role) = &session.role {
        item.insert("role".to_owned(), s(role));
    }
    if let Some(agent) = &session.client.user_agent {
        item.insert("userAgent".to_owned(), s(agent));
    }
    if let Some(ip) = &session.client.ip {
        item.insert("ip".to_owned(), s(ip));
    }
    if !session.amr.is_empty() {
        item.insert("amr".to_owned(), s(session.amr.join(" ")));
    }
    item
}

/// The `SET` clauses (`, userAgent = :ua, ip = :ip`) and values of the client
/// details a rotation has; a missing one keeps what the item holds.
fn client_sets(client: &ClientInfo) -> (String, HashMap<String, AttributeValue>) {
    let mut clauses = String::new();
    let mut values = HashMap::new();
    if let Some(agent) = &client.user_agent {
        clauses.push_str(", userAgent = :ua");
        values.insert(":ua".to_owned(), s(agent));
    }
    if let Some(ip) = &client.ip {
        clauses.push_str(", ip = :ip");
        values.insert(":ip".to_owned(), s(ip));
    }
    (clauses, values)
}

fn session_from_item(item: &Item) -> Result<Session, StoreError> {
    Ok(Session {
        id: get_s(item, "sessionId")?.parse().map_err(|_| StoreError::Corrupt("sessionId".to_owned()))?,
        user_id: get_s(item, "userId")?,
        email: get_s(item, "email")?,
        user_epoch: get_n_or_zero(item, "userEpoch")?,
        role: item.get("role").map(|_| get_s(item, "role")).transpose()?,
        generation: get_n(item, "gen")?,
        created_at: get_n(item, "createdAt")?,
        rotated_at: get_n(item, "rotatedAt")?,
        idle_expires_at: get_n(item, "idleExpiresAt")?,
        absolute_expires_at: get_n(item, "absExpiresAt")?,
        revoked_at: item.get("revokedAt").map(|_| get_n(item, "revokedAt")).transpose()?,
        revoke_reason: item.get("revokeReason").map(|_| get_s(item, "revokeReason")).transpose()?,
        client: ClientInfo {
            user_agent: item.get("userAgent").map(|_| get_s(item, "userAgent")).transpose()?,
            ip: item.get("ip").map(|_| get_s(item, "ip")).transpose()?,
        },
        amr: match item.get("amr") {
            None => vec![crate::token::AMR_PASSWORD.to_owned()],
            Some(_) => get_s(item, "amr")?.split_whitespace().map(str::to_owned).collect(),
        },
    })
}

fn get_s(item: &Item, name: &str) -> Result<String, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value.clone()),
        _ => Err(StoreError::Corrupt(format!("{name} is missing or not a string"))),
    }
}

fn get_bool_or_false(item: &Item, name: &str) -> Result<bool, StoreError> {
    match item.get(name) {
        Some(AttributeValue::Bool(value)) => Ok(*value),
        None => Ok(false),
        Some(_) => Err(StoreError::Corrupt(format!("{name} is not a boolean"))),
    }
}

fn get_n_or_zero(item: &Item, name: &str) -> Result<u64, StoreError> {
    item.get(name).map_or(Ok(0), |_| get_n(item, name))
}

fn get_n(item: &Item, name: &str) -> Result<u64, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => {
            value.parse().map_err(|_| StoreError::Corrupt(format!("{name} is not a whole number")))
        }
        _ => Err(StoreError::Corrupt(format!("{name} is missing or not a number"))),
    }
}

fn signing_key_pk(period: KeyPeriod) -> AttributeValue {
    s(format!("{SIGNING_KEY_PREFIX}{}#{}", period.seconds, period.start))
}

fn key_store_error(error: StoreError) -> SigningError {
    SigningError::KeyStore(error.to_string())
}

#[async_trait]
impl DelegatedKeyStore for DynamoStore {
    async fn delegated_key(
        &self,
        period: KeyPeriod,
        private: bool,
    ) -> Result<Option<DelegatedKeyRecord>, SigningError> {
        let attributes: &[&str] = if private { &SIGNING_KEY_ATTRIBUTES } else { &SIGNING_KEY_PUBLIC_ATTRIBUTES };
        let item = self.get_item(signing_key_pk(period), Some(attributes)).await.map_err(key_store_error)?;
        let Some(item) = item else { return Ok(None) };
        let record = (|| {
            Ok::<_, StoreError>(DelegatedKeyRecord {
                period,
                kid: get_s(&item, "kid")?,
                vouch: get_s(&item, "vouch")?,
                sealed_private: if private { Some(get_s(&item, "sealedKey")?) } else { None },
                created_at: get_n(&item, "createdAt")?,
            })
        })();
        record.map(Some).map_err(key_store_error)
    }

    async fn put_delegated_key(&self, record: &DelegatedKeyRecord) -> Result<bool, SigningError> {
        let sealed =
            record.sealed_private.as_deref().ok_or_else(|| SigningError::KeyStore("no private half".into()))?;
        // Kept a day past the last token the key can have signed; TTL only tidies.
        let tidy = record.period.end().saturating_add(3600).saturating_add(TIDY_AFTER_SECS);
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", signing_key_pk(record.period))
            .item("kid", s(&record.kid))
            .item("vouch", s(&record.vouch))
            .item("sealedKey", s(sealed))
            .item("createdAt", n(record.created_at))
            .item(TTL_ATTRIBUTE, n(tidy))
            .condition_expression("attribute_not_exists(pk)");
        match put.send().await {
            Ok(_) => Ok(true),
            Err(error)
                if matches!(error.as_service_error(), Some(PutItemError::ConditionalCheckFailedException(_))) =>
            {
                Ok(false)
            }
            Err(error) => Err(key_store_error(unavailable("PutItem", &error))),
        }
    }
}
