//! Tests of token verification, minting and the helpers: HS256 tokens signed here, and RS256
//! tokens against a JWKS served by a local HTTP server, so the fetch, cache and refetch limits
//! run as in production.

use super::*;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::encode;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};

const SECRET: &str = "a-test-secret-that-is-at-least-32-bytes-long";
const HOUR: Duration = Duration::from_secs(3600);

fn hs_only() -> Authenticator {
    Authenticator::new(AuthConfig {
        jwt_secret: Some(SECRET.into()),
        ..AuthConfig::default()
    })
    .unwrap()
}

fn with_claims_checks() -> Authenticator {
    Authenticator::new(AuthConfig {
        jwt_secret: Some(SECRET.into()),
        issuer: Some("https://idp.example".into()),
        audience: Some("scoreline-app".into()),
        ..AuthConfig::default()
    })
    .unwrap()
}

fn now() -> i64 {
    unix_now() as i64
}

fn hs256(secret: &str, claims: &Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn valid_claims() -> Value {
    json!({"sub": "user-1", "cognito:groups": ["operator"], "iat": now(), "exp": now() + 600})
}

// --- HS256 ---

#[tokio::test]
async fn a_minted_operator_token_verifies_as_an_operator() {
    let auth = hs_only();
    let token = auth.mint(Role::Operator, "desk-1", HOUR).unwrap();
    let principal = auth.verify(&token).await.unwrap();
    assert_eq!(principal.subject, "desk-1");
    assert_eq!(principal.roles, vec![Role::Operator]);
    assert!(principal.can_operate());
    assert!(!principal.is_admin());
}

#[tokio::test]
async fn a_minted_admin_token_verifies_as_an_admin_who_can_operate() {
    let auth = hs_only();
    let token = auth.mint(Role::Admin, "root", HOUR).unwrap();
    let principal = auth.verify(&token).await.unwrap();
    assert_eq!(principal.roles, vec![Role::Admin]);
    assert!(principal.is_admin());
    assert!(principal.can_operate());
}

#[tokio::test]
async fn a_token_without_known_groups_has_no_roles() {
    let auth = hs_only();
    let claims = json!({"sub": "fan", "cognito:groups": ["fans", "Admin"], "exp": now() + 60});
    let principal = auth.verify(&hs256(SECRET, &claims)).await.unwrap();
    assert!(principal.roles.is_empty());
    assert!(!principal.can_operate());
    assert!(!principal.is_admin());
}

#[tokio::test]
async fn repeated_groups_give_each_role_once() {
    let auth = hs_only();
    let claims =
        json!({"sub": "u", "cognito:groups": ["operator", "admin", "operator"], "exp": now() + 60});
    let principal = auth.verify(&hs256(SECRET, &claims)).await.unwrap();
    assert_eq!(principal.roles, vec![Role::Operator, Role::Admin]);
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let auth = hs_only();
    for ago in [120, 45] {
        let claims = json!({"sub": "u", "cognito:groups": ["admin"], "exp": now() - ago});
        assert_eq!(
            auth.verify(&hs256(SECRET, &claims)).await,
            Err(AuthError::Expired),
            "expired {ago}s ago"
        );
    }
}

#[tokio::test]
async fn a_token_expired_within_the_leeway_is_still_accepted() {
    let auth = hs_only();
    let claims = json!({"sub": "u", "exp": now() - 5});
    assert!(auth.verify(&hs256(SECRET, &claims)).await.is_ok());
}

#[tokio::test]
async fn a_token_used_before_its_nbf_is_refused() {
    let auth = hs_only();
    let claims = json!({"sub": "u", "nbf": now() + 300, "exp": now() + 600});
    assert_eq!(
        auth.verify(&hs256(SECRET, &claims)).await,
        Err(AuthError::NotYetValid)
    );
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_refused() {
    let auth = hs_only();
    let forged = hs256("another-secret-that-is-also-32-bytes-long", &valid_claims());
    assert_eq!(auth.verify(&forged).await, Err(AuthError::BadSignature));
}

#[tokio::test]
async fn a_token_with_a_tampered_payload_is_refused() {
    let auth = hs_only();
    let token = auth.mint(Role::Operator, "u", HOUR).unwrap();
    let mut parts: Vec<&str> = token.split('.').collect();
    let escalated = b64(&json!({"sub": "u", "cognito:groups": ["admin"], "exp": now() + 600}));
    parts[1] = &escalated;
    assert_eq!(
        auth.verify(&parts.join(".")).await,
        Err(AuthError::BadSignature)
    );
}

#[tokio::test]
async fn an_alg_none_token_is_refused() {
    let auth = hs_only();
    let header = b64(&json!({"alg": "none", "typ": "JWT"}));
    let payload = b64(&json!({"sub": "u", "cognito:groups": ["admin"], "exp": now() + 600}));
    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}"),
    ] {
        assert!(auth.verify(&token).await.is_err());
    }
    assert_eq!(
        auth.verify(&format!("{header}.{payload}.")).await,
        Err(AuthError::UnsupportedAlgorithm)
    );
    for alg in ["None", "NONE", "HS512", "RS512", "ES256"] {
        let header = b64(&json!({"alg": alg, "typ": "JWT"}));
        assert_eq!(
            auth.verify(&format!("{header}.{payload}.")).await,
            Err(AuthError::UnsupportedAlgorithm),
            "{alg}"
        );
    }
}

#[tokio::test]
async fn an_rs256_token_is_refused_when_only_a_secret_is_configured() {
    let auth = hs_only();
    let token = rs256(&keys().primary, Some("k1"), &valid_claims());
    assert_eq!(
        auth.verify(&token).await,
        Err(AuthError::UnsupportedAlgorithm)
    );
}

#[tokio::test]
async fn a_token_without_exp_is_refused() {
    let auth = hs_only();
    let claims = json!({"sub": "u", "cognito:groups": ["admin"]});
    assert_eq!(
        auth.verify(&hs256(SECRET, &claims)).await,
        Err(AuthError::MissingClaim("exp"))
    );
    let claims = json!({"sub": "u", "exp": "tomorrow"});
    assert!(auth.verify(&hs256(SECRET, &claims)).await.is_err());
}

#[tokio::test]
async fn a_token_without_any_subject_is_refused() {
    let auth = hs_only();
    let claims = json!({"sub": "", "cognito:groups": ["admin"], "exp": now() + 60});
    assert_eq!(
        auth.verify(&hs256(SECRET, &claims)).await,
        Err(AuthError::MissingClaim("sub"))
    );
}

#[tokio::test]
async fn the_subject_falls_back_to_the_username_claims() {
    let auth = hs_only();
    let claims = json!({"username": "alice", "exp": now() + 60});
    assert_eq!(
        auth.verify(&hs256(SECRET, &claims)).await.unwrap().subject,
        "alice"
    );
    let claims = json!({"cognito:username": "bob", "exp": now() + 60});
    assert_eq!(
        auth.verify(&hs256(SECRET, &claims)).await.unwrap().subject,
        "bob"
    );
}

#[tokio::test]
async fn a_token_from_another_issuer_is_refused() {
    let auth = with_claims_checks();
    let claims = json!({"sub": "u", "iss": "https://evil.example", "aud": "scoreline-app", "exp": now() + 60});
    assert_eq!(
        auth.verify(&hs256(SECRET, &claims)).await,
        Err(AuthError::WrongIssuer)
    );
}

#[tokio::test]
async fn a_token_without_an_issuer_is_refused_when_one_is_configured() {
    let auth = with_claims_checks();
    let claims = json!({"sub": "u", "aud": "scoreline-app", "exp": now() + 60});
    assert_eq!(
        auth.verify(&hs256(SECRET, &claims)).await,
        Err(AuthError::WrongIssuer)
    );
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let auth = with_claims_checks();
    for claims in [
        json!({"sub": "u", "iss": "https://idp.example", "aud": "other-app", "exp": now() + 60}),
        json!({"sub": "u", "iss": "https://idp.example", "aud": ["a", "b"], "exp": now() + 60}),
        json!({"sub": "u", "iss": "https://idp.example", "client_id": "other-app", "exp": now() + 60}),
        json!({"sub": "u", "iss": "https://idp.example", "exp": now() + 60}),
    ] {
        assert_eq!(
            auth.verify(&hs256(SECRET, &claims)).await,
            Err(AuthError::WrongAudience),
            "{claims}"
        );
    }
}

#[tokio::test]
async fn a_matching_aud_is_accepted_as_a_string_or_in_a_list() {
    let auth = with_claims_checks();
    for aud in [json!("scoreline-app"), json!(["other", "scoreline-app"])] {
        let claims =
            json!({"sub": "u", "iss": "https://idp.example", "aud": aud, "exp": now() + 60});
        assert!(auth.verify(&hs256(SECRET, &claims)).await.is_ok(), "{aud}");
    }
}

#[tokio::test]
async fn a_client_id_is_accepted_as_the_audience() {
    let auth = with_claims_checks();
    let claims = json!({
        "sub": "u", "iss": "https://idp.example", "client_id": "scoreline-app",
        "token_use": "access", "cognito:groups": ["operator"], "exp": now() + 60,
    });
    let principal = auth.verify(&hs256(SECRET, &claims)).await.unwrap();
    assert_eq!(principal.roles, vec![Role::Operator]);
}

#[tokio::test]
async fn minted_tokens_carry_the_configured_issuer_and_audience() {
    let auth = with_claims_checks();
    let token = auth.mint(Role::Admin, "root", HOUR).unwrap();
    assert!(auth.verify(&token).await.unwrap().is_admin());
    // The same secret without those claims configured still sees them in the payload.
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["iss"], "https://idp.example");
    assert_eq!(claims["aud"], "scoreline-app");
    assert_eq!(claims["cognito:groups"], json!(["admin"]));
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 3600);
}

#[tokio::test]
async fn garbage_tokens_are_malformed() {
    let auth = hs_only();
    for token in ["", "abc", "a.b", "a.b.c", "a.b.c.d", "!!!.e30."] {
        assert_eq!(
            auth.verify(token).await,
            Err(AuthError::MalformedToken),
            "{token:.20}"
        );
    }
}

#[tokio::test]
async fn an_oversized_token_is_refused_even_when_signed() {
    let auth = hs_only();
    let claims = json!({"sub": "u", "exp": now() + 60, "padding": "x".repeat(20_000)});
    assert_eq!(
        auth.verify(&hs256(SECRET, &claims)).await,
        Err(AuthError::MalformedToken)
    );
}

#[tokio::test]
async fn a_token_with_critical_header_extensions_is_refused() {
    let auth = hs_only();
    let signed_part = format!(
        "{}.{}",
        b64(&json!({"alg": "HS256", "typ": "JWT", "crit": ["x-custom"], "x-custom": 1})),
        b64(&valid_claims())
    );
    let signature = jsonwebtoken::crypto::sign(
        signed_part.as_bytes(),
        &EncodingKey::from_secret(SECRET.as_bytes()),
        Algorithm::HS256,
    )
    .unwrap();
    assert_eq!(
        auth.verify(&format!("{signed_part}.{signature}")).await,
        Err(AuthError::MalformedToken)
    );
}

#[test]
fn without_any_configuration_a_secret_is_generated() {
    let auth = Authenticator::new(AuthConfig::default()).unwrap();
    assert!(auth.secret_was_generated());
    assert!(!hs_only().secret_was_generated());
    assert!(auth.mint(Role::Admin, "admin", HOUR).is_ok());
}

#[tokio::test]
async fn generated_secrets_differ_between_authenticators() {
    let first = Authenticator::new(AuthConfig::default()).unwrap();
    let second = Authenticator::new(AuthConfig::default()).unwrap();
    let token = first.mint(Role::Admin, "admin", HOUR).unwrap();
    assert!(first.verify(&token).await.is_ok());
    assert_eq!(second.verify(&token).await, Err(AuthError::BadSignature));
}

#[test]
fn minting_without_a_secret_fails() {
    let auth = Authenticator::new(AuthConfig {
        jwks_url: Some("http://127.0.0.1:9/jwks.json".into()),
        ..AuthConfig::default()
    })
    .unwrap();
    assert!(!auth.secret_was_generated());
    assert!(auth.mint(Role::Admin, "root", HOUR).is_err());
}

#[test]
fn empty_or_invalid_settings_are_rejected() {
    for config in [
        AuthConfig {
            jwt_secret: Some(Secret::new("")),
            ..AuthConfig::default()
        },
        AuthConfig {
            jwks_url: Some(" ".into()),
            ..AuthConfig::default()
        },
        AuthConfig {
            jwks_url: Some("not a url".into()),
            ..AuthConfig::default()
        },
        AuthConfig {
            jwks_url: Some("ftp://idp.example/jwks".into()),
            ..AuthConfig::default()
        },
        AuthConfig {
            jwt_secret: Some(SECRET.into()),
            issuer: Some(String::new()),
            ..AuthConfig::default()
        },
    ] {
        assert!(Authenticator::new(config.clone()).is_err(), "{config:?}");
    }
}

#[test]
fn debug_output_never_shows_the_secret() {
    let config = AuthConfig {
        jwt_secret: Some(SECRET.into()),
        ..AuthConfig::default()
    };
    assert!(!format!("{config:?}").contains(SECRET));
    let auth = Authenticator::new(config).unwrap();
    assert!(!format!("{auth:?}").contains(SECRET));
}

// --- authenticate ---

#[tokio::test]
async fn no_authorization_value_means_anonymous() {
    assert_eq!(hs_only().authenticate(None).await, Ok(None));
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let auth = hs_only();
    let token = auth.mint(Role::Operator, "u", HOUR).unwrap();
    for value in [
        format!("Bearer {token}"),
        format!("bearer {token}"),
        format!("BEARER   {token} "),
    ] {
        let principal = auth.authenticate(Some(&value)).await.unwrap().unwrap();
        assert_eq!(principal.subject, "u");
    }
}

#[tokio::test]
async fn a_value_without_the_bearer_scheme_is_malformed() {
    let auth = hs_only();
    let token = auth.mint(Role::Operator, "u", HOUR).unwrap();
    for value in [
        token.clone(),
        format!("Basic {token}"),
        format!("Bearer{token}"),
        "Bearer".into(),
        "Bearer ".into(),
        String::new(),
        format!("Bearer {token} extra"),
    ] {
        assert_eq!(
            auth.authenticate(Some(&value)).await,
            Err(AuthError::MalformedHeader),
            "{value:.12}"
        );
    }
}

#[tokio::test]
async fn an_invalid_bearer_token_is_an_error_not_anonymous() {
    let auth = hs_only();
    assert_eq!(
        auth.authenticate(Some("Bearer not.a.jwt")).await,
        Err(AuthError::MalformedToken)
    );
}

// --- parse_ttl ---

#[test]
fn ttls_with_a_unit_are_parsed() {
    assert_eq!(parse_ttl("90s").unwrap(), Duration::from_secs(90));
    assert_eq!(parse_ttl("15m").unwrap(), Duration::from_secs(900));
    assert_eq!(parse_ttl("1h").unwrap(), Duration::from_secs(3600));
    assert_eq!(parse_ttl("2d").unwrap(), Duration::from_secs(172_800));
    assert_eq!(parse_ttl(" 1h ").unwrap(), Duration::from_secs(3600));
}

#[test]
fn malformed_ttls_are_rejected_with_a_clear_error() {
    for raw in [
        "",
        "h",
        "1",
        "60",
        "1x",
        "1H",
        "-1h",
        "+1h",
        "1.5h",
        "0s",
        "1h30m",
        "1 h",
        "ä",
        "99999999999999999999s",
        "999999999999999999d",
    ] {
        let error = parse_ttl(raw).expect_err(raw);
        assert!(error.to_string().contains("lifetime"), "{raw}: {error}");
    }
}

// --- token_from_init_payload ---

// The payload rules themselves are tested in `init`.

#[tokio::test]
async fn a_non_string_authorization_is_malformed_rather_than_anonymous() {
    let payload = json!({"Authorization": {"token": "abc"}});
    let value = token_from_init_payload(&payload).unwrap();
    assert!(value.is_some());
    assert_eq!(
        hs_only().authenticate(value.as_deref()).await,
        Err(AuthError::MalformedHeader)
    );
}

// --- RS256 via JWKS ---

struct TestKeys {
    primary: RsaPrivateKey,
    other: RsaPrivateKey,
}

/// RSA key generation is slow, so the tests share two keys.
fn keys() -> &'static TestKeys {
    static KEYS: OnceLock<TestKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = rand::thread_rng();
        TestKeys {
            primary: RsaPrivateKey::new(&mut rng, 2048).unwrap(),
            other: RsaPrivateKey::new(&mut rng, 2048).unwrap(),
        }
    })
}

fn rs256(key: &RsaPrivateKey, kid: Option<&str>, claims: &Value) -> String {
    let pem = key.to_pkcs1_pem(LineEnding::LF).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn jwk(key: &RsaPrivateKey, kid: Option<&str>) -> Value {
    let public = key.to_public_key();
    let mut jwk = json!({
        "kty": "RSA", "use": "sig", "alg": "RS256",
        "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
    });
    if let Some(kid) = kid {
        jwk["kid"] = json!(kid);
    }
    jwk
}

#[derive(Clone)]
struct JwksServer {
    url: String,
    document: Arc<Mutex<Value>>,
    hits: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

impl JwksServer {
    async fn start(keys: Vec<Value>) -> Self {
        let server = JwksServer {
            url: String::new(),
            document: Arc::new(Mutex::new(json!({ "keys": keys }))),
            hits: Arc::new(AtomicUsize::new(0)),
            down: Arc::new(AtomicBool::new(false)),
        };
        async fn serve(State(server): State<JwksServer>) -> Result<Json<Value>, StatusCode> {
            server.hits.fetch_add(1, Ordering::SeqCst);
            if server.down.load(Ordering::SeqCst) {
                return Err(StatusCode::SERVICE_UNAVAILABLE);
            }
            Ok(Json(server.document.lock().unwrap().clone()))
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        let app = Router::new()
            .route("/.well-known/jwks.json", get(serve))
            .with_state(server.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        JwksServer { url, ..server }
    }

    fn set_keys(&self, keys: Vec<Value>) {
        *self.document.lock().unwrap() = json!({ "keys": keys });
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn authenticator(&self) -> Authenticator {
        Authenticator::new(AuthConfig {
            jwks_url: Some(self.url.clone()),
            ..AuthConfig::default()
        })
        .unwrap()
    }
}

#[tokio::test]
async fn a_valid_rs256_token_is_accepted_with_its_roles() {
    let server = JwksServer::start(vec![jwk(&keys().primary, Some("k1"))]).await;
    let auth = server.authenticator();
    assert!(!auth.secret_was_generated());
    assert_eq!(server.hits(), 0, "the JWKS is fetched lazily");

    let claims = json!({"sub": "u-1", "cognito:groups": ["admin", "viewers"], "exp": now() + 60});
    let principal = auth
        .verify(&rs256(&keys().primary, Some("k1"), &claims))
        .await
        .unwrap();
    assert_eq!(principal.subject, "u-1");
    assert_eq!(principal.roles, vec![Role::Admin]);

    // Cached: a second verification does not fetch again.
    auth.verify(&rs256(&keys().primary, Some("k1"), &claims))
        .await
        .unwrap();
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn an_expired_rs256_token_is_refused() {
    let server = JwksServer::start(vec![jwk(&keys().primary, Some("k1"))]).await;
    let claims = json!({"sub": "u", "exp": now() - 120});
    assert_eq!(
        server
            .authenticator()
            .verify(&rs256(&keys().primary, Some("k1"), &claims))
            .await,
        Err(AuthError::Expired)
    );
}

#[tokio::test]
async fn an_rs256_token_with_an_unknown_kid_is_refused() {
    let server = JwksServer::start(vec![jwk(&keys().primary, Some("k1"))]).await;
    let token = rs256(&keys().primary, Some("k-unknown"), &valid_claims());
    assert_eq!(
        server.authenticator().verify(&token).await,
        Err(AuthError::UnknownKey)
    );
}

#[tokio::test]
async fn an_rs256_token_signed_by_another_key_with_a_known_kid_is_refused() {
    let server = JwksServer::start(vec![jwk(&keys().primary, Some("k1"))]).await;
    let token = rs256(&keys().other, Some("k1"), &valid_claims());
    assert_eq!(
        server.authenticator().verify(&token).await,
        Err(AuthError::BadSignature)
    );
}

#[tokio::test]
async fn an_hs256_token_signed_with_the_public_key_is_refused() {
    let server = JwksServer::start(vec![jwk(&keys().primary, Some("k1"))]).await;
    let public_pem = keys()
        .primary
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let confused = encode(
        &header,
        &valid_claims(),
        &EncodingKey::from_secret(public_pem.as_bytes()),
    )
    .unwrap();

    // JWKS only: HS256 is not an accepted algorithm at all.
    let auth = server.authenticator();
    assert_eq!(
        auth.verify(&confused).await,
        Err(AuthError::UnsupportedAlgorithm)
    );
    // Secret and JWKS: HS256 is checked against the secret only, never the RSA key.
    let both = Authenticator::new(AuthConfig {
        jwt_secret: Some(SECRET.into()),
        jwks_url: Some(server.url.clone()),
        ..AuthConfig::default()
    })
    .unwrap();
    assert_eq!(both.verify(&confused).await, Err(AuthError::BadSignature));
}

#[tokio::test]
async fn an_hs256_token_is_refused_when_only_jwks_is_configured() {
    let server = JwksServer::start(vec![jwk(&keys().primary, Some("k1"))]).await;
    let token = hs256(SECRET, &valid_claims());
    assert_eq!(
        server.authenticator().verify(&token).await,
        Err(AuthError::UnsupportedAlgorithm)
    );
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn with_a_secret_and_a_jwks_both_algorithms_verify() {
    let server = JwksServer::start(vec![jwk(&keys().primary, Some("k1"))]).await;
    let auth = Authenticator::new(AuthConfig {
        jwt_secret: Some(SECRET.into()),
        jwks_url: Some(server.url.clone()),
        ..AuthConfig::default()
    })
    .unwrap();
    let minted = auth.mint(Role::Operator, "desk", HOUR).unwrap();
    assert_eq!(auth.verify(&minted).await.unwrap().subject, "desk");
    let signed = rs256(&keys().primary, Some("k1"), &valid_claims());
    assert_eq!(auth.verify(&signed).await.unwrap().subject, "user-1");
}

#[tokio::test]
async fn unknown_kids_refetch_the_jwks_at_most_once_per_interval() {
    let server = JwksServer::start(vec![jwk(&keys().primary, Some("k1"))]).await;
    let auth = server.authenticator();
    auth.verify(&rs256(&keys().primary, Some("k1"), &valid_claims()))
        .await
        .unwrap();
    assert_eq!(server.hits(), 1);
    for i in 0..5 {
        let token = rs256(
            &keys().primary,
            Some(&format!("made-up-{i}")),
            &valid_claims(),
        );
        assert_eq!(auth.verify(&token).await, Err(AuthError::UnknownKey));
    }
    assert_eq!(server.hits(), 1, "the refetch is rate limited");
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_by_a_refetch() {
    let server = JwksServer::start(vec![jwk(&keys().primary, Some("k1"))]).await;
    let auth = Authenticator::build(
        AuthConfig {
            jwks_url: Some(server.url.clone()),
            ..AuthConfig::default()
        },
        Duration::ZERO,
    )
    .unwrap();
    let old = rs256(&keys().primary, Some("k1"), &valid_claims());
    auth.verify(&old).await.unwrap();

    server.set_keys(vec![jwk(&keys().other, Some("k2"))]);
    let new = rs256(&keys().other, Some("k2"), &valid_claims());
    auth.verify(&new).await.unwrap();
    assert_eq!(server.hits(), 2);
    // The retired key is gone with the refetch.
    auth.verify(&new).await.unwrap();
    assert_eq!(auth.verify(&old).await, Err(AuthError::UnknownKey));
}

#[tokio::test]
async fn a_token_without_kid_uses_the_only_key_of_the_jwks() {
    let server = JwksServer::start(vec![jwk(&keys().primary, Some("k1"))]).await;
    let token = rs256(&keys().primary, None, &valid_claims());
    assert!(server.authenticator().verify(&token).await.is_ok());
}

#[tokio::test]
async fn a_token_without_kid_is_refused_when_the_jwks_has_several_keys() {
    let server = JwksServer::start(vec![
        jwk(&keys().primary, Some("k1")),
        jwk(&keys().other, Some("k2")),
    ])
    .await;
    let auth = server.authenticator();
    let token = rs256(&keys().primary, None, &valid_claims());
    assert_eq!(auth.verify(&token).await, Err(AuthError::UnknownKey));
    // Both keys are usable by kid.
    for (key, kid) in [(&keys().primary, "k1"), (&keys().other, "k2")] {
        assert!(auth
            .verify(&rs256(key, Some(kid), &valid_claims()))
            .await
            .is_ok());
    }
}

#[tokio::test]
async fn keys_not_meant_for_rs256_signatures_are_ignored() {
    let mut encryption = jwk(&keys().primary, Some("enc"));
    encryption["use"] = json!("enc");
    let mut other_alg = jwk(&keys().primary, Some("ps"));
    other_alg["alg"] = json!("PS256");
    let mut wrong_ops = jwk(&keys().primary, Some("ops"));
    wrong_ops["key_ops"] = json!(["encrypt"]);
    let mut no_use = jwk(&keys().primary, Some("plain"));
    no_use.as_object_mut().unwrap().remove("use");
    let server = JwksServer::start(vec![
        encryption,
        other_alg,
        wrong_ops,
        json!({"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"}),
        json!({"kty": "RSA", "kid": "broken"}),
        json!("not an object"),
        no_use,
    ])
    .await;
    let auth = server.authenticator();
    for kid in ["enc", "ps", "ops", "ec", "broken"] {
        let token = rs256(&keys().primary, Some(kid), &valid_claims());
        assert_eq!(
            auth.verify(&token).await,
            Err(AuthError::UnknownKey),
            "{kid}"
        );
    }
    let token = rs256(&keys().primary, Some("plain"), &valid_claims());
    assert!(
        auth.verify(&token).await.is_ok(),
        "a key without `use` is accepted"
    );
}

#[tokio::test]
async fn an_unreachable_jwks_makes_the_keys_unavailable() {
    // A port that was just free: connections are refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    drop(listener);
    let auth = Authenticator::new(AuthConfig {
        jwks_url: Some(url),
        ..AuthConfig::default()
    })
    .unwrap();
    let token = rs256(&keys().primary, Some("k1"), &valid_claims());
    assert_eq!(auth.verify(&token).await, Err(AuthError::JwksUnavailable));
}

#[tokio::test]
async fn a_failing_jwks_is_not_retried_before_the_interval() {
    let server = JwksServer::start(vec![jwk(&keys().primary, Some("k1"))]).await;
    server.set_down(true);
    let auth = server.authenticator();
    let token = rs256(&keys().primary, Some("k1"), &valid_claims());
    for _ in 0..3 {
        assert_eq!(auth.verify(&token).await, Err(AuthError::JwksUnavailable));
    }
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn a_jwks_that_recovers_is_used_after_the_interval() {
    let server = JwksServer::start(vec![jwk(&keys().primary, Some("k1"))]).await;
    server.set_down(true);
    let auth = Authenticator::build(
        AuthConfig {
            jwks_url: Some(server.url.clone()),
            ..AuthConfig::default()
        },
        Duration::ZERO,
    )
    .unwrap();
    let token = rs256(&keys().primary, Some("k1"), &valid_claims());
    assert_eq!(auth.verify(&token).await, Err(AuthError::JwksUnavailable));
    server.set_down(false);
    assert!(auth.verify(&token).await.is_ok());
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn a_non_jwks_response_makes_the_keys_unavailable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let app = Router::new().route("/jwks.json", get(|| async { "<html>oops</html>" }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let auth = Authenticator::new(AuthConfig {
        jwks_url: Some(url),
        ..AuthConfig::default()
    })
    .unwrap();
    let token = rs256(&keys().primary, Some("k1"), &valid_claims());
    assert_eq!(auth.verify(&token).await, Err(AuthError::JwksUnavailable));
}
