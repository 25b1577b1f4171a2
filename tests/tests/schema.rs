//! `schema.graphql` is the public contract; it must be exactly what the code serves.

use std::path::PathBuf;

#[test]
fn schema_graphql_matches_the_schema_the_code_serves() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schema.graphql");
    let exported = api::sdl();
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == exported,
        "schema.graphql differs from the code's schema; regenerate it with \
         `cargo run -q -p api -- schema > schema.graphql` and review the diff"
    );
}

/// The SDL without descriptions, each field on one line, e.g. `matchUpdated(id: ID!, sinceVersion:
/// Int): Match!` (described arguments are printed one per line).
fn sdl_without_descriptions() -> String {
    let mut out = String::new();
    let mut in_description = false;
    for line in api::sdl().lines().map(str::trim) {
        if line == "\"\"\"" {
            in_description = !in_description;
            continue;
        }
        if in_description || line.is_empty() {
            continue;
        }
        let joins = out.ends_with('(') || line.starts_with(')');
        if !out.is_empty() && !joins {
            out.push(if out.ends_with(',') { ' ' } else { '\n' });
        }
        out.push_str(line);
    }
    out
}

#[test]
fn the_schema_names_the_public_contract() {
    let sdl = sdl_without_descriptions();
    for name in [
        "matchUpdated(id: ID!, sinceVersion: Int): Match!",
        "matchesUpdated(filter: MatchFilter): Match!",
        "matchEvents(matchId: ID!, afterSeq: Int): MatchEvent!",
        "createMatch(input: CreateMatchInput!): Match!",
        "recordEvent(input: RecordEventInput!): Match!",
        "updateScore(input: UpdateScoreInput!): Match!",
        "union MatchDetails = SoccerDetails | BaseballDetails | BasketballDetails | \
         IceHockeyDetails | AmericanFootballDetails",
        "updateDetails(input: UpdateDetailsInput!): Match!",
        "scalar DateTime @specifiedBy(url: \"https://datatracker.ietf.org/doc/html/rfc3339\")",
    ] {
        assert!(sdl.contains(name), "the schema lacks `{name}`");
    }
}
