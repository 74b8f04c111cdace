//! The storage contract: every rule of users and sessions, run against both the
//! in-memory store and DynamoDB on moto, through the real `SessionManager`.
//! Time is a `ManualClock`; nothing sleeps, and TTL deletion is never relied on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod support;

use latchkey::Clock;
use latchkey::session::{InvalidGrant, RefreshError, RefreshKind, Refreshed, SessionPolicy};
use latchkey::store::{ClientInfo, RotateOutcome, StoreError, User};
use latchkey::token::{RefreshKey, RefreshToken, SessionId};

use support::{Backend, DAY, POLICY, START};

fn refused(outcome: Result<Refreshed, RefreshError>) -> InvalidGrant {
    match outcome {
        Err(RefreshError::Invalid(grant)) => grant,
        other => panic!("expected invalid_grant, got {other:?}"),
    }
}

async fn rotation_returns_the_successor_of_the_same_session(b: Backend) {
    let sessions = b.manager(POLICY);
    let user = b.user("ada@example.com").await;
    let started = sessions.start(&user).await.unwrap();
    b.clock.advance(60);
    let refreshed = sessions.refresh(&started.refresh_token).await.unwrap();
    assert_eq!(refreshed.kind, RefreshKind::Rotated);
    assert_eq!(refreshed.refresh_token, b.token(started.session.id, 1));
    assert_ne!(refreshed.refresh_token, started.refresh_token);
    assert_eq!(refreshed.session.generation, 1);
    assert_eq!(refreshed.session.rotated_at, START + 60);
    assert_eq!(refreshed.user.id, user.id);
    let stored = b.sessions.get_session(&started.session.id).await.unwrap().unwrap();
    assert_eq!(stored.generation, 1);
}

async fn replay_of_a_rotated_token_is_refused_and_revokes_the_session(b: Backend) {
    let sessions = b.manager(POLICY);
    let started = sessions.start(&b.user("ada@example.com").await).await.unwrap();
    let newest = sessions.refresh(&started.refresh_token).await.unwrap().refresh_token;
    b.clock.advance(POLICY.grace_secs);
    assert_eq!(refused(sessions.refresh(&started.refresh_token).await), InvalidGrant::Reuse);
    assert_eq!(refused(sessions.refresh(&newest).await), InvalidGrant::Revoked);
    let stored = b.sessions.get_session(&started.session.id).await.unwrap().unwrap();
    assert_eq!(stored.revoke_reason.as_deref(), Some("reuse"));
}

async fn grace_window_replay_returns_the_same_successor(b: Backend) {
    let sessions = b.manager(POLICY);
    let started = sessions.start(&b.user("ada@example.com").await).await.unwrap();
    let first = sessions.refresh(&started.refresh_token).await.unwrap();
    b.clock.advance(POLICY.grace_secs - 1);
    let again = sessions.refresh(&started.refresh_token).await.unwrap();
    assert_eq!(again.kind, RefreshKind::GraceReplay);
    assert_eq!(again.refresh_token, first.refresh_token);
    let stored = b.sessions.get_session(&started.session.id).await.unwrap().unwrap();
    assert_eq!(stored.generation, 1, "a grace replay writes nothing");
    let next = sessions.refresh(&first.refresh_token).await.unwrap();
    assert_eq!(next.session.generation, 2);
}

async fn predecessor_after_the_window_revokes_the_session(b: Backend) {
    let sessions = b.manager(POLICY);
    let started = sessions.start(&b.user("ada@example.com").await).await.unwrap();
    let first = sessions.refresh(&started.refresh_token).await.unwrap();
    b.clock.advance(POLICY.grace_secs);
    assert_eq!(refused(sessions.refresh(&started.refresh_token).await), InvalidGrant::Reuse);
    assert_eq!(refused(sessions.refresh(&first.refresh_token).await), InvalidGrant::Revoked);
}

async fn grandparent_reuse_revokes_even_inside_the_window(b: Backend) {
    let sessions = b.manager(POLICY);
    let started = sessions.start(&b.user("ada@example.com").await).await.unwrap();
    let first = sessions.refresh(&started.refresh_token).await.unwrap();
    let second = sessions.refresh(&first.refresh_token).await.unwrap();
    assert_eq!(refused(sessions.refresh(&started.refresh_token).await), InvalidGrant::Reuse);
    assert_eq!(refused(sessions.refresh(&second.refresh_token).await), InvalidGrant::Revoked);
}

async fn concurrent_rotations_of_one_token_make_exactly_one_generation(b: Backend) {
    let sessions = b.manager(POLICY);
    let started = sessions.start(&b.user("ada@example.com").await).await.unwrap();
    let successor = b.token(started.session.id, 1);
    let outcomes = futures::future::join_all((0..32).map(|_| sessions.refresh(&started.refresh_token))).await;
    // Every tab gets the same successor (docs/storage.md): one rotates, 31 are grace
    // replays of it, none is refused.
    let (mut rotations, mut replays) = (0, 0);
    for outcome in outcomes {
        match outcome {
            Ok(refreshed) => {
                assert_eq!(refreshed.refresh_token, successor);
                match refreshed.kind {
                    RefreshKind::Rotated => rotations += 1,
                    RefreshKind::GraceReplay => replays += 1,
                }
            }
            Err(RefreshError::Invalid(reason)) => panic!("a concurrent tab was refused: {reason:?}"),
            Err(other) => panic!("store failure under concurrency: {other}"),
        }
    }
    assert_eq!((rotations, replays), (1, 31));
    let stored = b.sessions.get_session(&started.session.id).await.unwrap().unwrap();
    assert_eq!(stored.generation, 1);
    assert!(stored.revoked_at.is_none());
    assert!(sessions.refresh(&successor).await.is_ok());
}

async fn a_session_whose_user_is_gone_or_replaced_is_refused_and_revoked_as_user_deleted(b: Backend) {
    let sessions = b.manager(POLICY);
    let ada = b.user("ada@example.com").await;
    let started = sessions.start(&ada).await.unwrap();
    // One session names an email no user has (the user item was deleted); another
    // names ada's email with another user id (deleted, then signed up again).
    for (email, user_id) in [("gone@example.com", ada.id.clone()), ("ada@example.com", "id-someone-else".to_owned())] {
        let mut orphan = started.session.clone();
        orphan.id = SessionId::random().unwrap();
        orphan.email = email.to_owned();
        orphan.user_id = user_id;
        b.sessions.create_session(&orphan).await.unwrap();
        assert_eq!(refused(sessions.refresh(&b.token(orphan.id, 0)).await), InvalidGrant::UserMissing, "{email}");
        let stored = b.sessions.get_session(&orphan.id).await.unwrap().unwrap();
        assert_eq!(stored.revoke_reason.as_deref(), Some("user_deleted"), "{email}");
        assert_eq!(stored.revoked_at, Some(START), "{email}");
    }
    assert!(sessions.refresh(&started.refresh_token).await.is_ok(), "ada's own session is untouched");
}

async fn idle_expiry_is_enforced_without_ttl_deletion(b: Backend) {
    let sessions = b.manager(POLICY);
    let started = sessions.start(&b.user("ada@example.com").await).await.unwrap();
    b.clock.advance(POLICY.idle_secs - 1);
    let refreshed = sessions.refresh(&started.refresh_token).await.unwrap();
    assert_eq!(refreshed.session.idle_expires_at, START + POLICY.idle_secs - 1 + POLICY.idle_secs);
    b.clock.advance(POLICY.idle_secs);
    assert_eq!(refused(sessions.refresh(&refreshed.refresh_token).await), InvalidGrant::Expired);
    assert!(b.sessions.get_session(&started.session.id).await.unwrap().is_some(), "the item is still there");
}

async fn absolute_lifetime_caps_rotation(b: Backend) {
    let policy = SessionPolicy { idle_secs: DAY, absolute_secs: 2 * DAY, grace_secs: 10 };
    let sessions = b.manager(policy);
    let started = sessions.start(&b.user("ada@example.com").await).await.unwrap();
    let mut token = started.refresh_token;
    for _ in 0..2 {
        b.clock.advance(20 * 3600);
        token = sessions.refresh(&token).await.unwrap().refresh_token;
    }
    b.clock.advance(8 * 3600);
    assert_eq!(b.clock.now(), START + 2 * DAY);
    assert_eq!(refused(sessions.refresh(&token).await), InvalidGrant::Expired);
}

async fn revoke_one_session_is_idempotent(b: Backend) {
    let sessions = b.manager(POLICY);
    let user = b.user("ada@example.com").await;
    let doomed = sessions.start(&user).await.unwrap();
    let other = sessions.start(&user).await.unwrap();
    assert!(sessions.revoke(&doomed.session.id, "logout").await.unwrap().is_some());
    b.clock.advance(5);
    assert!(sessions.revoke(&doomed.session.id, "admin").await.unwrap().is_some());
    let stored = b.sessions.get_session(&doomed.session.id).await.unwrap().unwrap();
    assert_eq!((stored.revoked_at, stored.revoke_reason.as_deref()), (Some(START), Some("logout")));
    assert_eq!(refused(sessions.refresh(&doomed.refresh_token).await), InvalidGrant::Revoked);
    assert!(sessions.refresh(&other.refresh_token).await.is_ok());
    assert!(sessions.revoke(&SessionId::random().unwrap(), "logout").await.unwrap().is_none());
}

async fn revoke_all_ends_every_session_of_the_user_only(b: Backend) {
    let sessions = b.manager(POLICY);
    let ada = b.user("ada@example.com").await;
    let bob = b.user("bob@example.com").await;
    let mut ada_tokens = Vec::new();
    for _ in 0..3 {
        ada_tokens.push(sessions.start(&ada).await.unwrap().refresh_token);
    }
    let bob_token = sessions.start(&bob).await.unwrap().refresh_token;
    assert_eq!(sessions.revoke_all(&ada.id, &ada.email, "admin", None).await.unwrap(), 3);
    assert_eq!(sessions.revoke_all(&ada.id, &ada.email, "admin", None).await.unwrap(), 0);
    for token in &ada_tokens {
        assert_eq!(refused(sessions.refresh(token).await), InvalidGrant::Revoked);
    }
    assert!(sessions.refresh(&bob_token).await.is_ok());
}

async fn disabled_user_cannot_refresh_and_the_session_is_revoked(b: Backend) {
    let sessions = b.manager(POLICY);
    let user = b.user("ada@example.com").await;
    let started = sessions.start(&user).await.unwrap();
    b.users.set_disabled(&user.email, true).await.unwrap();
    assert_eq!(refused(sessions.refresh(&started.refresh_token).await), InvalidGrant::UserDisabled);
    b.users.set_disabled(&user.email, false).await.unwrap();
    let stored = b.sessions.get_session(&started.session.id).await.unwrap().unwrap();
    assert_eq!(stored.revoke_reason.as_deref(), Some("user_disabled"));
    let next = b.token(started.session.id, 1);
    assert_eq!(refused(sessions.refresh(&next).await), InvalidGrant::Revoked, "re-enabling does not revive it");
}

async fn password_change_ends_earlier_sessions(b: Backend) {
    let sessions = b.manager(POLICY);
    let user = b.user("ada@example.com").await;
    let before = sessions.start(&user).await.unwrap();
    b.users.set_password(&user.email, "$argon2id$new", b.clock.now()).await.unwrap();
    assert_eq!(refused(sessions.refresh(&before.refresh_token).await), InvalidGrant::SessionsEnded);
    let stored = b.sessions.get_session(&before.session.id).await.unwrap().unwrap();
    assert_eq!(stored.revoke_reason.as_deref(), Some("sessions_ended"));
    // The same clock second, even a clock behind the change: only the credential counts.
    let current = b.users.get_user_by_email(&user.email).await.unwrap().unwrap();
    let after = sessions.start(&current).await.unwrap();
    assert!(sessions.refresh(&after.refresh_token).await.is_ok());
}

/// A login that read the old hash before the change and wrote its session after
/// it (argon2 runs in between) must not survive: it is bound to the user it read.
async fn login_racing_a_password_change_does_not_outlive_it(b: Backend) {
    let sessions = b.manager(POLICY);
    let user = b.user("ada@example.com").await;
    let read_before_change = b.users.get_user_by_email(&user.email).await.unwrap().unwrap();
    b.users.set_password(&user.email, "$argon2id$new", b.clock.now()).await.unwrap();
    let written_after = sessions.start(&read_before_change).await.unwrap();
    assert_eq!(refused(sessions.refresh(&written_after.refresh_token).await), InvalidGrant::SessionsEnded);
}

/// Revoke-all lists sessions through an eventually consistent index; one the
/// listing missed (begun from a read of the user before the revoke) still ends.
async fn revoke_all_ends_a_session_the_listing_missed(b: Backend) {
    let sessions = b.manager(POLICY);
    let ada = b.user("ada@example.com").await;
    assert_eq!(sessions.revoke_all(&ada.id, &ada.email, "logout_all", None).await.unwrap(), 0);
    let unlisted = sessions.start(&ada).await.unwrap();
    assert_eq!(refused(sessions.refresh(&unlisted.refresh_token).await), InvalidGrant::SessionsEnded);
    let current = b.users.get_user_by_email(&ada.email).await.unwrap().unwrap();
    assert_eq!(current.session_epoch, ada.session_epoch + 1);
    let fresh = sessions.start(&current).await.unwrap();
    assert!(sessions.refresh(&fresh.refresh_token).await.is_ok(), "a login after the revoke is unaffected");
}

async fn expired_revoked_unknown_and_forged_tokens_are_all_invalid_grants(b: Backend) {
    let sessions = b.manager(POLICY);
    let started = sessions.start(&b.user("ada@example.com").await).await.unwrap();
    let never_started = b.token(SessionId::random().unwrap(), 0);
    assert_eq!(refused(sessions.refresh(&never_started).await), InvalidGrant::UnknownSession);
    let forged = RefreshKey::generate().unwrap().mint(&RefreshToken { session_id: started.session.id, generation: 0 });
    assert_eq!(refused(sessions.refresh(&forged).await), InvalidGrant::Forged);
    assert_eq!(refused(sessions.refresh("lk1.garbage").await), InvalidGrant::Malformed);
    assert_eq!(refused(sessions.refresh("").await), InvalidGrant::Malformed);
    let future_generation = b.token(started.session.id, 5);
    assert_eq!(refused(sessions.refresh(&future_generation).await), InvalidGrant::Reuse);
}

async fn duplicate_email_is_refused(b: Backend) {
    let first = b.user("ada@example.com").await;
    let twin = User { id: "another-id".into(), ..first.clone() };
    assert!(matches!(b.users.create_user(&twin).await, Err(StoreError::DuplicateEmail)));
    assert_eq!(b.users.get_user_by_email(&first.email).await.unwrap().unwrap().id, first.id);
}

async fn users_are_found_by_email_and_id_and_updated(b: Backend) {
    let ada = b.user("  Ada@Example.COM ").await;
    assert_eq!(ada.email, "ada@example.com");
    assert_eq!(b.users.get_user_by_email("ada@example.com").await.unwrap().unwrap(), ada);
    assert_eq!(b.users.get_user_by_id(&ada.id).await.unwrap().unwrap(), ada);
    assert!(b.users.get_user_by_email("nobody@example.com").await.unwrap().is_none());
    assert!(b.users.get_user_by_id("no-such-id").await.unwrap().is_none());

    b.users.set_role(&ada.email, "admin").await.unwrap();
    assert!(!b.users.upgrade_password_hash(&ada.email, "stale", "$argon2id$stronger").await.unwrap());
    assert!(b.users.upgrade_password_hash(&ada.email, &ada.password_hash, "$argon2id$stronger").await.unwrap());
    let updated = b.users.get_user_by_email(&ada.email).await.unwrap().unwrap();
    assert_eq!(updated.role, "admin");
    assert_eq!(updated.password_hash, "$argon2id$stronger");
    assert_eq!(updated.password_changed_at, ada.password_changed_at, "an upgrade is not a password change");

    b.user("bob@example.com").await;
    let emails: Vec<String> = b.users.list_users().await.unwrap().into_iter().map(|u| u.email).collect();
    assert_eq!(emails, ["ada@example.com", "bob@example.com"]);

    for outcome in [
        b.users.set_role("nobody@example.com", "admin").await,
        b.users.set_disabled("nobody@example.com", true).await,
        b.users.set_password("nobody@example.com", "h", START).await,
    ] {
        assert!(matches!(outcome, Err(StoreError::NotFound)), "{outcome:?}");
    }
}

async fn live_sessions_are_listed_per_user(b: Backend) {
    let sessions = b.manager(POLICY);
    let ada = b.user("ada@example.com").await;
    let first = sessions.start(&ada).await.unwrap();
    b.clock.advance(1);
    let second = sessions.start(&ada).await.unwrap();
    let revoked = sessions.start(&ada).await.unwrap();
    sessions.revoke(&revoked.session.id, "logout").await.unwrap();
    sessions.start(&b.user("bob@example.com").await).await.unwrap();
    let ids: Vec<SessionId> = sessions.list_live(&ada.id).await.unwrap().iter().map(|s| s.id).collect();
    assert_eq!(ids, [first.session.id, second.session.id]);
    assert_eq!(b.sessions.list_user_sessions(&ada.id).await.unwrap().len(), 3);
    b.clock.advance(POLICY.idle_secs);
    assert!(sessions.list_live(&ada.id).await.unwrap().is_empty());
}

async fn conditional_rotation_reports_the_item_it_lost_to(b: Backend) {
    let sessions = b.manager(POLICY);
    let started = sessions.start(&b.user("ada@example.com").await).await.unwrap();
    let id = started.session.id;
    assert_eq!(started.session.role.as_deref(), Some("member"), "the login's role snapshot");
    assert_eq!(b.sessions.get_session(&id).await.unwrap().unwrap().role.as_deref(), Some("member"));
    let won =
        b.sessions.rotate_session(&id, 0, START, POLICY.idle_secs, "Admin", &ClientInfo::default()).await.unwrap();
    assert!(matches!(won, RotateOutcome::Rotated(ref s) if s.generation == 1 && s.role.as_deref() == Some("Admin")));
    assert_eq!(b.sessions.get_session(&id).await.unwrap().unwrap().role.as_deref(), Some("Admin"), "stored");
    let lost =
        b.sessions.rotate_session(&id, 0, START, POLICY.idle_secs, "member", &ClientInfo::default()).await.unwrap();
    assert!(
        matches!(lost, RotateOutcome::Conflict(Some(ref s)) if s.generation == 1 && s.role.as_deref() == Some("Admin"))
    );
    let missing = b
        .sessions
        .rotate_session(&SessionId::random().unwrap(), 0, START, 1, "member", &ClientInfo::default())
        .await
        .unwrap();
    assert_eq!(missing, RotateOutcome::Conflict(None));
}

async fn a_users_sessions_show_where_they_were_last_used_newest_first(b: Backend) {
    let sessions = b.manager(POLICY);
    let ada = b.user("ada@example.com").await;
    let laptop = ClientInfo::new(Some("Firefox/130\n on a laptop"), Some("198.51.100.7"));
    let older = sessions.open(&ada, laptop).unwrap();
    sessions.save(&older).await.unwrap();
    b.clock.advance(10);
    let phone = sessions.start(&ada).await.unwrap();
    let ended = sessions.start(&ada).await.unwrap();
    sessions.revoke(&ended.session.id, "logout").await.unwrap();
    sessions.start(&b.user("bob@example.com").await).await.unwrap();
    b.clock.advance(5);
    let moved = ClientInfo::new(Some("Safari"), Some("2001:db8::1"));
    let pending = sessions.prepare_refresh(&phone.refresh_token).await.unwrap();
    sessions.commit_refresh(pending, &moved).await.unwrap();
    let listed = sessions.user_sessions(&ada.id, &ada.email).await.unwrap();
    let ids: Vec<SessionId> = listed.iter().map(|s| s.id).collect();
    assert_eq!(ids, [phone.session.id, older.session.id], "live ones, newest first");
    assert_eq!(listed[0].client, moved, "a rotation records where it came from");
    assert_eq!(listed[0].rotated_at, START + 15);
    assert_eq!(listed[1].client.user_agent.as_deref(), Some("Firefox/130 on a laptop"), "control characters dropped");
    assert_eq!(listed[1].client.ip.as_deref(), Some("198.51.100.7"));
    assert!(sessions.user_sessions(&ada.id, "bob@example.com").await.unwrap().is_empty(), "id and email must agree");
    sessions.revoke_all(&ada.id, &ada.email, "logout_all", None).await.unwrap();
    assert!(sessions.user_sessions(&ada.id, &ada.email).await.unwrap().is_empty());
}

async fn a_session_ends_only_for_its_own_user(b: Backend) {
    let sessions = b.manager(POLICY);
    let ada = b.user("ada@example.com").await;
    let bob = b.user("bob@example.com").await;
    let (mine, other) = (sessions.start(&ada).await.unwrap(), sessions.start(&ada).await.unwrap());
    let bobs = sessions.start(&bob).await.unwrap();
    let (me, target) = (mine.session.id, other.session.id.to_string());
    for refused in [bobs.session.id.to_string(), "not-a-session".to_owned(), SessionId::random().unwrap().to_string()] {
        assert!(!sessions.end_session_of(&ada.id, Some(&me), &refused, "ended_by_user").await.unwrap(), "{refused}");
    }
    let untouched = b.sessions.get_session(&bobs.session.id).await.unwrap().unwrap();
    assert_eq!(untouched.revoked_at, None, "another user's session is not written");
    assert!(!sessions.end_session_of(&bob.id, Some(&bobs.session.id), &target, "x").await.unwrap());
    assert!(sessions.end_session_of(&ada.id, Some(&me), &target, "ended_by_user").await.unwrap());
    assert_eq!(refused(sessions.refresh(&other.refresh_token).await), InvalidGrant::Revoked);
    assert!(!sessions.end_session_of(&ada.id, Some(&me), &target, "ended_by_user").await.unwrap(), "once");
    sessions.revoke(&me, "logout").await.unwrap();
    let third = sessions.start(&ada).await.unwrap().session.id.to_string();
    assert!(!sessions.end_session_of(&ada.id, Some(&me), &third, "x").await.unwrap(), "an ended caller ends nothing");
    assert!(sessions.end_session_of(&ada.id, None, &third, "admin").await.unwrap());
}

async fn ending_the_others_keeps_the_callers_session(b: Backend) {
    let sessions = b.manager(POLICY);
    let ada = b.user("ada@example.com").await;
    let (mine, other) = (sessions.start(&ada).await.unwrap(), sessions.start(&ada).await.unwrap());
    let bobs = sessions.start(&b.user("bob@example.com").await).await.unwrap();
    assert_eq!(sessions.end_others(&mine.session).await.unwrap(), Some(1));
    assert_eq!(refused(sessions.refresh(&other.refresh_token).await), InvalidGrant::Revoked);
    let kept = sessions.refresh(&mine.refresh_token).await.unwrap();
    assert_eq!(kept.session.user_epoch, 1, "the kept session moved with the epoch");
    sessions.refresh(&bobs.refresh_token).await.unwrap();
    // The session as it was before the epoch moved is no credential any more.
    assert_eq!(sessions.end_others(&mine.session).await.unwrap(), None);
    assert!(!b.sessions.end_other_sessions(&ada.email, 0, &mine.session.id, START).await.unwrap(), "stale epoch");
}

contract!(
    a_users_sessions_show_where_they_were_last_used_newest_first,
    a_session_ends_only_for_its_own_user,
    ending_the_others_keeps_the_callers_session,
    rotation_returns_the_successor_of_the_same_session,
    replay_of_a_rotated_token_is_refused_and_revokes_the_session,
    grace_window_replay_returns_the_same_successor,
    predecessor_after_the_window_revokes_the_session,
    grandparent_reuse_revokes_even_inside_the_window,
    concurrent_rotations_of_one_token_make_exactly_one_generation,
    a_session_whose_user_is_gone_or_replaced_is_refused_and_revoked_as_user_deleted,
    idle_expiry_is_enforced_without_ttl_deletion,
    absolute_lifetime_caps_rotation,
    revoke_one_session_is_idempotent,
    revoke_all_ends_every_session_of_the_user_only,
    revoke_all_ends_a_session_the_listing_missed,
    login_racing_a_password_change_does_not_outlive_it,
    disabled_user_cannot_refresh_and_the_session_is_revoked,
    password_change_ends_earlier_sessions,
    expired_revoked_unknown_and_forged_tokens_are_all_invalid_grants,
    duplicate_email_is_refused,
    users_are_found_by_email_and_id_and_updated,
    live_sessions_are_listed_per_user,
    conditional_rotation_reports_the_item_it_lost_to,
);
