//! Authentication over real HTTP: HS256 tokens, tokens that must be refused with 401 (expired,
//! forged, `alg: none`, tampered, garbage), RS256 tokens verified through a JWKS that the test
//! serves itself, and the `api token` command.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use api::Role;
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::LineEnding;
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use scoreline_tests::{TestApp, TEST_SECRET};
use serde_json::{json, Value};

const CREATE_COMPETITION: &str =
    "mutation($i: CreateCompetitionInput!) { createCompetition(input: $i) { id name } }";
const PUBLIC_QUERY: &str = "{ competitions { id } }";

fn competition_input(name: &str) -> Value {
    json!({"i": {"name": name, "sport": "SOCCER", "season": "2026"}})
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn hs256(secret: &str, claims: &Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn admin_claims() -> Value {
    json!({"sub": "someone", "cognito:groups": ["admin"], "iat": now(), "exp": now() + 600})
}

/// POSTs a GraphQL request with a raw `Authorization` header value.
async fn post_with_authorization(
    app: &TestApp,
    authorization: &str,
    query: &str,
    variables: Value,
) -> (u16, Value) {
    let resp = app
        .http
        .post(app.url("/graphql"))
        .header("authorization", authorization)
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .expect("the server answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("a JSON body"))
}

/// Asserts that `token` is refused with 401 and `UNAUTHENTICATED`, for a mutation and for a
/// public query alike, over POST and GET; returns the refusal's message.
async fn assert_refused(app: &TestApp, token: &str) -> String {
    let (status, body) = app
        .post(
            CREATE_COMPETITION,
            competition_input("Refused"),
            Some(token),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{body}"
    );
    let message = body["errors"][0]["message"].as_str().unwrap().to_string();

    // A public query with a bad token is refused too: never a silent downgrade to anonymous.
    let (status, body) = app.post(PUBLIC_QUERY, json!({}), Some(token)).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{body}"
    );
    let resp = app
        .http
        .get(app.url("/graphql"))
        .bearer_auth(token)
        .query(&[("query", PUBLIC_QUERY)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{body}"
    );

    // Nothing was created, and the same query without a token works.
    let data = app.ok(PUBLIC_QUERY, json!({}), None).await;
    assert_eq!(data["competitions"], json!([]));
    message
}

// ---------------------------------------------------------------------------------------------
// HS256
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_hs256_admin_token_may_create_a_competition() {
    let app = TestApp::spawn().await;
    let token = TestApp::token(Role::Admin);
    let data = app
        .ok(
            CREATE_COMPETITION,
            competition_input("Premier"),
            Some(&token),
        )
        .await;
    assert_eq!(data["createCompetition"]["name"], "Premier");
    // A hand-made token with the same secret and claims works just the same.
    let data = app
        .ok(
            CREATE_COMPETITION,
            competition_input("Liga"),
            Some(&hs256(TEST_SECRET, &admin_claims())),
        )
        .await;
    assert_eq!(data["createCompetition"]["name"], "Liga");
    let all = app.ok(PUBLIC_QUERY, json!({}), None).await;
    assert_eq!(all["competitions"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = TestApp::spawn().await;
    let token = TestApp::token(Role::Admin);
    let (status, body) = post_with_authorization(
        &app,
        &format!("bearer {token}"),
        CREATE_COMPETITION,
        competition_input("Lower"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["createCompetition"]["name"], "Lower");
}

#[tokio::test]
async fn a_token_without_a_known_group_may_query_but_not_mutate() {
    let app = TestApp::spawn().await;
    let token = hs256(
        TEST_SECRET,
        &json!({"sub": "fan", "cognito:groups": ["viewers", "Admin"], "exp": now() + 600}),
    );
    let data = app.ok(PUBLIC_QUERY, json!({}), Some(&token)).await;
    assert_eq!(data["competitions"], json!([]));
    let (code, body) = app
        .error(CREATE_COMPETITION, competition_input("Nope"), Some(&token))
        .await;
    assert_eq!(code, "FORBIDDEN", "group names are case-sensitive: {body}");
    let (code, _) = app
        .error(
            "mutation { setMatchStatus(input: {matchId: \"m\", status: LIVE}) { id } }",
            json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
}

#[tokio::test]
async fn an_expired_token_is_refused_with_401_even_for_a_public_query() {
    let app = TestApp::spawn().await;
    let expired = hs256(
        TEST_SECRET,
        &json!({"sub": "late", "cognito:groups": ["admin"], "iat": now() - 7200, "exp": now() - 3600}),
    );
    let message = assert_refused(&app, &expired).await;
    assert_eq!(message, "the token has expired");
}

#[tokio::test]
async fn a_token_without_an_expiry_is_refused() {
    let app = TestApp::spawn().await;
    let forever = hs256(
        TEST_SECRET,
        &json!({"sub": "forever", "cognito:groups": ["admin"]}),
    );
    let message = assert_refused(&app, &forever).await;
    assert_eq!(message, "the token lacks the `exp` claim");
}

#[tokio::test]
async fn a_token_not_valid_yet_is_refused() {
    let app = TestApp::spawn().await;
    let early = hs256(
        TEST_SECRET,
        &json!({"sub": "early", "cognito:groups": ["admin"], "nbf": now() + 3600, "exp": now() + 7200}),
    );
    let message = assert_refused(&app, &early).await;
    assert_eq!(message, "the token is not valid yet");
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_refused_with_401() {
    let app = TestApp::spawn().await;
    let forged = hs256("another-secret-of-the-same-length-0123", &admin_claims());
    let message = assert_refused(&app, &forged).await;
    assert_eq!(message, "the token's signature is invalid");
}

#[tokio::test]
async fn a_token_whose_claims_were_edited_is_refused_with_401() {
    let app = TestApp::spawn().await;
    // An operator promotes themselves to admin by rewriting the payload.
    let genuine = TestApp::token(Role::Operator);
    let parts: Vec<&str> = genuine.split('.').collect();
    let payload = URL_SAFE_NO_PAD.encode(admin_claims().to_string());
    let edited = format!("{}.{payload}.{}", parts[0], parts[2]);
    let message = assert_refused(&app, &edited).await;
    assert_eq!(message, "the token's signature is invalid");
}

#[tokio::test]
async fn an_alg_none_token_is_refused_with_401() {
    let app = TestApp::spawn().await;
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(admin_claims().to_string());
    for unsigned in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}.c2lnbmF0dXJl"),
        format!(
            "{}.{payload}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"None","typ":"JWT"}"#)
        ),
    ] {
        let message = assert_refused(&app, &unsigned).await;
        assert_eq!(message, "the token's signing algorithm is not accepted");
    }
}

#[tokio::test]
async fn a_token_signed_with_another_hmac_algorithm_is_refused() {
    let app = TestApp::spawn().await;
    let hs512 = encode(
        &Header::new(Algorithm::HS512),
        &admin_claims(),
        &EncodingKey::from_secret(TEST_SECRET.as_bytes()),
    )
    .unwrap();
    let message = assert_refused(&app, &hs512).await;
    assert_eq!(message, "the token's signing algorithm is not accepted");
}

#[tokio::test]
async fn a_garbage_authorization_header_is_refused_with_401() {
    let app = TestApp::spawn().await;
    for value in [
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNzd29yZA==",
        "Bearer not-a-jwt",
        "Bearer a.b.c",
        "Bearer a.b.c.d",
        "Bearer two tokens",
        "eyJhbGciOiJIUzI1NiJ9.e30.sig",
    ] {
        for (query, variables) in [
            (PUBLIC_QUERY, json!({})),
            (CREATE_COMPETITION, competition_input("Garbage")),
        ] {
            let (status, body) = post_with_authorization(&app, value, query, variables).await;
            assert_eq!(status, 401, "{value:?}: {body}");
            assert_eq!(
                body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
                "{value:?}: {body}"
            );
        }
    }
    let data = app.ok(PUBLIC_QUERY, json!({}), None).await;
    assert_eq!(data["competitions"], json!([]));
}

#[tokio::test]
async fn an_authorization_header_that_is_not_text_is_refused_with_401() {
    let app = TestApp::spawn().await;
    let resp = app
        .http
        .post(app.url("/graphql"))
        .header(
            "authorization",
            reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
        )
        .json(&json!({"query": PUBLIC_QUERY}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
}

// ---------------------------------------------------------------------------------------------
// RS256 through a JWKS
// ---------------------------------------------------------------------------------------------

struct Keys {
    /// The key the JWKS publishes.
    published: RsaPrivateKey,
    /// A key nobody published.
    stranger: RsaPrivateKey,
}

/// RSA key generation is slow, so the tests of this file share two keys.
fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = rsa::rand_core::OsRng;
        Keys {
            published: RsaPrivateKey::new(&mut rng, 2048).unwrap(),
            stranger: RsaPrivateKey::new(&mut rng, 2048).unwrap(),
        }
    })
}

const KID: &str = "test-key-1";
const ISSUER: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_test";
const CLIENT_ID: &str = "scoreline-mobile";

fn jwk(key: &RsaPrivateKey, kid: &str) -> Value {
    let public = key.to_public_key();
    json!({
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
        "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
    })
}

fn rs256(key: &RsaPrivateKey, kid: &str, claims: &Value) -> String {
    let pem = key.to_pkcs1_pem(LineEnding::LF).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_string());
    encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// Cognito-shaped claims of an access token.
fn cognito_claims(groups: &[&str]) -> Value {
    json!({"sub": "c0ffee-1", "cognito:groups": groups, "token_use": "access",
           "iss": ISSUER, "client_id": CLIENT_ID, "iat": now(), "exp": now() + 600})
}

/// Serves `{"keys": [...]}` on a free loopback port; returns its URL.
async fn serve_jwks(keys: Vec<Value>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    let document = json!({ "keys": keys });
    let app = Router::new().route(
        "/.well-known/jwks.json",
        get(move || {
            let document = document.clone();
            async move { Json(document) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// A server that trusts only the JWKS (no HS256 secret), optionally checking issuer and
/// audience.
async fn jwks_app(issuer: Option<&str>, audience: Option<&str>) -> TestApp {
    let url = serve_jwks(vec![jwk(&keys().published, KID)]).await;
    let issuer = issuer.map(str::to_string);
    let audience = audience.map(str::to_string);
    TestApp::spawn_with(move |config| {
        config.auth_jwt_secret = None;
        config.auth_jwks_url = Some(url);
        config.auth_issuer = issuer;
        config.auth_audience = audience;
    })
    .await
}

#[tokio::test]
async fn an_rs256_admin_token_from_the_jwks_may_create_a_competition() {
    let app = jwks_app(None, None).await;
    let token = rs256(&keys().published, KID, &cognito_claims(&["admin"]));
    let data = app
        .ok(
            CREATE_COMPETITION,
            competition_input("Serie A"),
            Some(&token),
        )
        .await;
    assert_eq!(data["createCompetition"]["name"], "Serie A");
    // The cached key verifies the next request as well.
    let data = app
        .ok(
            CREATE_COMPETITION,
            competition_input("Eredivisie"),
            Some(&token),
        )
        .await;
    assert_eq!(data["createCompetition"]["name"], "Eredivisie");
}

#[tokio::test]
async fn an_rs256_operator_token_is_forbidden_from_admin_mutations() {
    let app = jwks_app(None, None).await;
    let token = rs256(&keys().published, KID, &cognito_claims(&["operator"]));
    let (status, body) = app
        .post(CREATE_COMPETITION, competition_input("Nope"), Some(&token))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    // The operator is authenticated: the public query answers with the token.
    let data = app.ok(PUBLIC_QUERY, json!({}), Some(&token)).await;
    assert_eq!(data["competitions"], json!([]));
}

#[tokio::test]
async fn an_hs256_token_is_refused_with_401_by_a_jwks_only_server() {
    let app = jwks_app(None, None).await;
    let message = assert_refused(&app, &TestApp::token(Role::Admin)).await;
    assert_eq!(message, "the token's signing algorithm is not accepted");
}

#[tokio::test]
async fn an_rs256_token_signed_by_an_unpublished_key_is_refused_with_401() {
    let app = jwks_app(None, None).await;
    // The published kid, the wrong key.
    let impostor = rs256(&keys().stranger, KID, &cognito_claims(&["admin"]));
    let message = assert_refused(&app, &impostor).await;
    assert_eq!(message, "the token's signature is invalid");
    // A kid the JWKS does not have.
    let unknown = rs256(
        &keys().published,
        "another-kid",
        &cognito_claims(&["admin"]),
    );
    let message = assert_refused(&app, &unknown).await;
    assert_eq!(message, "the token's signing key is unknown");
}

#[tokio::test]
async fn an_expired_rs256_token_is_refused_with_401() {
    let app = jwks_app(None, None).await;
    let mut claims = cognito_claims(&["admin"]);
    claims["exp"] = json!(now() - 3600);
    let message = assert_refused(&app, &rs256(&keys().published, KID, &claims)).await;
    assert_eq!(message, "the token has expired");
}

#[tokio::test]
async fn the_issuer_and_audience_are_checked_when_configured() {
    let app = jwks_app(Some(ISSUER), Some(CLIENT_ID)).await;
    // Cognito access tokens name the app client in `client_id`, ID tokens in `aud`.
    let access = rs256(&keys().published, KID, &cognito_claims(&["admin"]));
    let data = app
        .ok(
            CREATE_COMPETITION,
            competition_input("Access"),
            Some(&access),
        )
        .await;
    assert_eq!(data["createCompetition"]["name"], "Access");
    let mut id_claims = cognito_claims(&["admin"]);
    id_claims.as_object_mut().unwrap().remove("client_id");
    id_claims["aud"] = json!(CLIENT_ID);
    let id_token = rs256(&keys().published, KID, &id_claims);
    let data = app
        .ok(CREATE_COMPETITION, competition_input("Id"), Some(&id_token))
        .await;
    assert_eq!(data["createCompetition"]["name"], "Id");

    let cases = [
        (
            "iss",
            json!("https://evil.example"),
            "the token was issued by an unexpected issuer",
        ),
        (
            "client_id",
            json!("another-app"),
            "the token is meant for another audience",
        ),
    ];
    for (claim, value, expected) in cases {
        let mut claims = cognito_claims(&["admin"]);
        claims[claim] = value;
        let refused = rs256(&keys().published, KID, &claims);
        let (status, body) = app
            .post(
                CREATE_COMPETITION,
                competition_input("Refused"),
                Some(&refused),
            )
            .await;
        assert_eq!(status, 401, "{claim}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
        assert_eq!(body["errors"][0]["message"], expected, "{claim}");
    }
    let mut no_issuer = cognito_claims(&["admin"]);
    no_issuer.as_object_mut().unwrap().remove("iss");
    let (status, _) = app
        .post(
            CREATE_COMPETITION,
            competition_input("Refused"),
            Some(&rs256(&keys().published, KID, &no_issuer)),
        )
        .await;
    assert_eq!(status, 401);
    let all = app.ok(PUBLIC_QUERY, json!({}), None).await;
    assert_eq!(all["competitions"].as_array().unwrap().len(), 2);
}

// ---------------------------------------------------------------------------------------------
// `api token`
// ---------------------------------------------------------------------------------------------

/// Runs `api token ...` through cargo, as a person would from the workspace. Cargo may have
/// to build the binary (or wait for another build), hence the generous limit.
async fn api_token(args: &[&str]) -> std::process::Output {
    let workspace = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let child = tokio::process::Command::new(env!("CARGO"))
        .current_dir(workspace)
        .args(["run", "-q", "--locked", "-p", "api", "--", "token"])
        .args(args)
        .env("AUTH_JWT_SECRET", TEST_SECRET)
        .env_remove("AUTH_ISSUER")
        .env_remove("AUTH_AUDIENCE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("cargo starts");
    tokio::time::timeout(Duration::from_secs(600), child.wait_with_output())
        .await
        .expect("`cargo run -p api -- token` finishes within 10 minutes")
        .expect("cargo runs")
}

#[tokio::test]
async fn the_token_command_prints_a_token_the_server_accepts() {
    let output = api_token(&["--role", "operator", "--sub", "x", "--ttl", "1h"]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap().trim().to_string();
    assert_eq!(token.split('.').count(), 3, "{token}");

    // The claims are what was asked for.
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["sub"], "x");
    assert_eq!(claims["cognito:groups"], json!(["operator"]));
    let ttl = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(ttl, 3600);

    // The server accepts it as an operator: match-day mutations yes, admin ones no.
    let app = TestApp::spawn().await;
    let seed = app.seed("SOCCER").await;
    let data = app
        .ok(
            "mutation($i: SetMatchStatusInput!) { setMatchStatus(input: $i) { status } }",
            json!({"i": {"matchId": seed.match_id, "status": "LIVE"}}),
            Some(&token),
        )
        .await;
    assert_eq!(data["setMatchStatus"]["status"], "LIVE");
    let (code, _) = app
        .error(CREATE_COMPETITION, competition_input("Nope"), Some(&token))
        .await;
    assert_eq!(code, "FORBIDDEN");

    // A server with another secret refuses it.
    let other = TestApp::spawn_with(|config| {
        config.auth_jwt_secret = Some("a-different-secret-0123456789abcdef".into());
    })
    .await;
    let (status, _) = other.post(PUBLIC_QUERY, json!({}), Some(&token)).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_token_command_refuses_an_unknown_role() {
    let output = api_token(&["--role", "superuser"]).await;
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown role"), "{stderr}");
}
