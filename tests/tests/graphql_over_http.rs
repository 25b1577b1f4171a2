//! GraphQL over HTTP as app teams' tools expect it, with a real HTTP client: CORS preflights,
//! the GraphQL-over-HTTP media type and its status codes, batches, automatic persisted queries,
//! trusted documents, introspection at default limits, and ambiguous credentials.

use api::Role;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::StatusCode;
use scoreline_tests::TestApp;
use serde_json::{json, Value};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const LIVE: &str = "{ liveMatches { id } }";

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// POSTs a JSON body with an `Accept` header; returns status, content type and JSON body.
async fn post(app: &TestApp, accept: Option<&str>, body: Value) -> (StatusCode, String, Value) {
    let mut request = app.http.post(app.url("/graphql")).json(&body);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    answer(request.send().await.expect("the server answers")).await
}

async fn get(
    app: &TestApp,
    accept: Option<&str>,
    params: &[(&str, &str)],
) -> (StatusCode, String, Value) {
    let mut request = app.http.get(app.url("/graphql")).query(params);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    answer(request.send().await.expect("the server answers")).await
}

async fn answer(response: reqwest::Response) -> (StatusCode, String, Value) {
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = response.json().await.expect("a JSON body");
    (status, content_type, body)
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("")
}

// ---------------------------------------------------------------------------------------------
// CORS
// ---------------------------------------------------------------------------------------------

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.http
        .request(reqwest::Method::OPTIONS, app.url("/graphql"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,authorization,apollographql-client-name",
        )
        .send()
        .await
        .expect("the server answers")
}

#[tokio::test]
async fn a_browser_on_any_origin_may_query_and_mutate_by_default_without_credentials() {
    let app = TestApp::spawn().await;
    let response = preflight(&app, "https://scores.example.com").await;
    assert!(response.status().is_success(), "{}", response.status());
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    for header in ["content-type", "authorization", "apollographql-client-name"] {
        assert!(allowed.contains(header), "{allowed}");
    }
    let methods = headers["access-control-allow-methods"].to_str().unwrap();
    assert!(
        methods.contains("POST") && methods.contains("GET"),
        "{methods}"
    );
    assert!(headers.get("access-control-allow-credentials").is_none());

    // The actual request carries the header too.
    let response = app
        .http
        .post(app.url("/graphql"))
        .header("origin", "https://scores.example.com")
        .json(&json!({"query": LIVE}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn a_configured_origin_list_admits_only_its_origins() {
    let app = TestApp::spawn_with(|c| {
        c.cors_allowed_origins = "https://console.example.com, https://fans.example.com".into()
    })
    .await;
    let response = preflight(&app, "https://fans.example.com").await;
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://fans.example.com"
    );
    let response = preflight(&app, "https://evil.example.net").await;
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

// ---------------------------------------------------------------------------------------------
// Media types and status codes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_graphql_response_media_type_gets_its_status_codes_and_legacy_json_is_unchanged() {
    let app = TestApp::spawn().await;
    let accept = Some("application/graphql-response+json, application/json;q=0.9");

    let (status, content_type, body) = post(&app, accept, json!({"query": LIVE})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with(GRAPHQL_RESPONSE), "{content_type}");
    assert!(body["data"]["liveMatches"].is_array(), "{body}");

    for (query, expected) in [
        ("{ liveMatches { id ", "GRAPHQL_PARSE_FAILED"),
        ("{ liveMatches { nope } }", "GRAPHQL_VALIDATION_FAILED"),
    ] {
        let (status, content_type, body) = post(&app, accept, json!({"query": query})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(content_type.starts_with(GRAPHQL_RESPONSE));
        assert_eq!(code(&body), expected, "{body}");
        assert!(body.get("data").is_none(), "no data entry: {body}");

        // Legacy clients: 200 with `data: null`, as always.
        let (status, content_type, body) = post(&app, None, json!({"query": query})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(content_type, "application/json");
        assert_eq!(code(&body), expected);
        assert_eq!(body["data"], Value::Null);
    }

    // An error while executing is not a request error: 200, with `data`.
    let mutation = "mutation { setMatchStatus(input: {matchId: \"m\", status: LIVE}) { id } }";
    let (status, _, body) = post(&app, accept, json!({"query": mutation})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(code(&body), "UNAUTHENTICATED");
    assert!(body.get("data").is_some(), "{body}");
}

#[tokio::test]
async fn a_document_validated_before_still_refuses_variables_of_the_wrong_type() {
    // The first request validates the document in full; later ones only check their variables,
    // and must refuse what the full validation refuses, with the same answer.
    let app = TestApp::spawn_with(|c| c.response_cache_bytes = 0).await;
    let accept = Some("application/graphql-response+json, application/json;q=0.9");
    let query = "query($id: ID!, $n: Int) { match(id: $id) { id events(first: $n) { seq } } }";
    let ok = json!({"query": query, "variables": {"id": "soccer-live-1", "n": 2}});
    for _ in 0..2 {
        let (status, _, body) = post(&app, accept, ok.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
    }
    for variables in [
        json!({"id": true}),
        json!({"id": null}),
        json!({"id": "soccer-live-1", "n": "two"}),
        json!({"id": "soccer-live-1", "n": 2.5}),
    ] {
        let (status, _, body) = post(
            &app,
            accept,
            json!({"query": query, "variables": variables}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{variables}: {body}");
        assert_eq!(
            code(&body),
            "GRAPHQL_VALIDATION_FAILED",
            "{variables}: {body}"
        );
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("Invalid value for argument")),
            "{body}"
        );
    }
    let (status, _, body) = post(&app, accept, ok).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_mutation_over_get_is_405_with_the_graphql_response_media_type() {
    let app = TestApp::spawn().await;
    let mutation = "mutation { setMatchStatus(input: {matchId: \"m\", status: LIVE}) { id } }";
    let response = app
        .http
        .get(app.url("/graphql"))
        .query(&[("query", mutation)])
        .header("accept", GRAPHQL_RESPONSE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST");
    // Legacy: the mutation is refused in the result.
    let (status, _, body) = get(&app, None, &[("query", mutation)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(code(&body), "BAD_REQUEST", "{body}");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_refused_with_415() {
    let app = TestApp::spawn().await;
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let response = app
            .http
            .post(app.url("/graphql"))
            .header("content-type", content_type)
            .body(json!({"query": LIVE}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let body: Value = response.json().await.unwrap();
        assert_eq!(code(&body), "BAD_REQUEST");
    }
}

#[tokio::test]
async fn get_takes_the_spec_parameters_including_operation_name() {
    let app = TestApp::spawn().await;
    let seed = app.seed("SOCCER").await;
    let document = "query A { liveMatches { id } } query B($id: ID!) { match(id: $id) { id } }";
    let variables = json!({"id": seed.match_id}).to_string();
    let (status, _, body) = get(
        &app,
        Some(GRAPHQL_RESPONSE),
        &[
            ("query", document),
            ("operationName", "B"),
            ("variables", &variables),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["match"]["id"], seed.match_id);
    let (status, _, _) = get(&app, None, &[("query", LIVE), ("variables", "[1]")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

// ---------------------------------------------------------------------------------------------
// Batches
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_batch_is_answered_in_order_and_bounded() {
    let app = TestApp::spawn_with(|c| c.max_batch_operations = 3).await;
    let seed = app.live_match("SOCCER").await;
    let token = TestApp::token(Role::Operator);
    let batch = json!([
        {"query": "query($id: ID!) { match(id: $id) { version } }", "variables": {"id": seed.match_id}},
        {"query": "mutation($i: RecordEventInput!) { recordEvent(input: $i) { version } }",
         "variables": {"i": {"matchId": seed.match_id, "type": "GOAL", "side": "HOME"}}},
        {"query": "{ nope }"}
    ]);
    let response = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let results = body.as_array().expect("an array of results");
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["data"]["match"]["version"], 2);
    assert_eq!(results[1]["data"]["recordEvent"]["version"], 3);
    assert_eq!(code(&results[2]), "GRAPHQL_VALIDATION_FAILED");

    let too_many = json!([{"query": LIVE}, {"query": LIVE}, {"query": LIVE}, {"query": LIVE}]);
    let (status, _, body) = post(&app, None, too_many).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("MAX_BATCH_OPERATIONS"),
        "{body}"
    );
    let (status, _, _) = post(&app, None, json!([])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

// ---------------------------------------------------------------------------------------------
// Automatic persisted queries and trusted documents
// ---------------------------------------------------------------------------------------------

fn persisted(hash: &str) -> Value {
    json!({"persistedQuery": {"version": 1, "sha256Hash": hash}})
}

#[tokio::test]
async fn an_unknown_hash_asks_for_the_document_and_is_then_known_over_post_and_get() {
    let app = TestApp::spawn().await;
    let hash = sha256_hex(LIVE);
    let accept = Some("application/graphql-response+json, application/json;q=0.9");

    let (status, _, body) = post(&app, accept, json!({"extensions": persisted(&hash)})).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "Apollo's link retries on this answer: {body}"
    );
    assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound");
    assert_eq!(code(&body), "PERSISTED_QUERY_NOT_FOUND");

    let (status, _, body) = post(
        &app,
        accept,
        json!({"query": LIVE, "extensions": persisted(&hash)}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["data"]["liveMatches"].is_array(), "{body}");

    let extensions = persisted(&hash).to_string();
    let (status, _, body) = get(&app, accept, &[("extensions", &extensions)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["data"]["liveMatches"].is_array(), "{body}");
}

#[tokio::test]
async fn a_document_that_does_not_match_its_hash_is_a_bad_request() {
    let app = TestApp::spawn().await;
    let wrong = sha256_hex("{ competitions { id } }");
    let (status, _, body) = post(
        &app,
        None,
        json!({"query": LIVE, "extensions": persisted(&wrong)}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), "BAD_REQUEST");
    assert_eq!(
        body["errors"][0]["message"],
        "provided sha does not match query"
    );
}

#[tokio::test]
async fn with_trusted_documents_required_anonymous_clients_run_only_the_manifest() {
    let manifest = json!({
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [{"id": sha256_hex(LIVE), "name": "Live", "type": "query", "body": LIVE}]
    });
    let path = std::env::temp_dir().join(format!("scoreline-manifest-{}.json", std::process::id()));
    std::fs::write(&path, manifest.to_string()).unwrap();
    let app = TestApp::spawn_with(|c| {
        c.persisted_documents = Some(path.clone());
        c.persisted_documents_required = api::PersistedDocumentsRequired::Anonymous;
    })
    .await;

    let (status, _, body) = post(
        &app,
        None,
        json!({"extensions": persisted(&sha256_hex(LIVE))}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["data"]["liveMatches"].is_array(), "{body}");

    let other = "{ competitions { id } }";
    let (status, _, body) = post(&app, None, json!({"query": other})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), "PERSISTED_QUERY_NOT_IN_LIST");
    // APQ cannot register it either.
    let (_, _, body) = post(
        &app,
        None,
        json!({"query": other, "extensions": persisted(&sha256_hex(other))}),
    )
    .await;
    assert_eq!(code(&body), "PERSISTED_QUERY_NOT_IN_LIST");

    // A signed-in operator may send any document.
    let data = app
        .ok(other, json!({}), Some(&TestApp::token(Role::Operator)))
        .await;
    assert!(data["competitions"].is_array());
    let _ = std::fs::remove_file(&path);
}

// ---------------------------------------------------------------------------------------------
// Introspection and document limits
// ---------------------------------------------------------------------------------------------

/// graphql-js's `getIntrospectionQuery()` (v16, default options): what GraphiQL, GraphQL Code
/// Generator and graphql-inspector send.
const INTROSPECTION_QUERY: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) {
    name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } }
}
"#;

#[tokio::test]
async fn the_standard_introspection_query_passes_at_the_default_limits() {
    let app = TestApp::spawn().await;
    let data = app.ok(INTROSPECTION_QUERY, json!({}), None).await;
    assert_eq!(data["__schema"]["queryType"]["name"], "Query");
    assert_eq!(data["__schema"]["mutationType"]["name"], "Mutation");
    assert_eq!(data["__schema"]["subscriptionType"]["name"], "Subscription");
}

#[tokio::test]
async fn introspection_can_be_turned_off_while_typename_still_answers() {
    let app = TestApp::spawn_with(|c| c.introspection = false).await;
    let (status, _, body) = post(&app, None, json!({"query": INTROSPECTION_QUERY})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["limit"], "INTROSPECTION");
    let data = app
        .ok("{ __typename liveMatches { id } }", json!({}), None)
        .await;
    assert_eq!(data["__typename"], "Query");
}

#[tokio::test]
async fn an_application_query_over_a_limit_is_refused_naming_the_limit() {
    let app = TestApp::spawn_with(|c| c.max_query_depth = 3).await;
    let (_, _, body) = post(
        &app,
        None,
        json!({"query": "{ matches { edges { node { id } } } }"}),
    )
    .await;
    assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED");
    assert_eq!(body["errors"][0]["extensions"]["limit"], "MAX_QUERY_DEPTH");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("MAX_QUERY_DEPTH"),
        "{body}"
    );
}

#[tokio::test]
async fn fragments_that_double_at_every_step_are_refused_at_once() {
    let app = TestApp::spawn().await;
    let mut query = String::from("query { ...F24 } fragment F0 on Query { liveMatches { id } }");
    for i in 1..=24 {
        query.push_str(&format!(
            " fragment F{i} on Query {{ ...F{p} ...F{p} }}",
            p = i - 1
        ));
    }
    let (_, _, body) = post(&app, None, json!({"query": query})).await;
    assert_eq!(
        body["errors"][0]["extensions"]["limit"], "MAX_EXPANDED_SELECTIONS",
        "{body}"
    );
}

// ---------------------------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn two_authorization_headers_are_refused_not_resolved() {
    let app = TestApp::spawn().await;
    let mut headers = HeaderMap::new();
    let admin = format!("Bearer {}", TestApp::token(Role::Admin));
    headers.append("authorization", HeaderValue::from_str(&admin).unwrap());
    headers.append("authorization", HeaderValue::from_static("Bearer garbage"));
    let response = app
        .http
        .post(app.url("/graphql"))
        .headers(headers)
        .json(&json!({"query": LIVE}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(code(&body), "UNAUTHENTICATED");
}
