//! Subscription analysis: what fan-out reads from a request before anything runs, to choose
//! the slow-consumer policy and whether (and on which resume variable) subscribers may share
//! one execution. It parses the document only; validation is left to the execution.

use async_graphql::parser::types::{DocumentOperations, OperationType, Selection};
use async_graphql::{Name, Request, Value};

use super::{Policy, ResumeFrom};

/// A subscription operation as far as fan-out cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    pub policy: Policy,
    /// Shareable: the operation is one known root field whose resume argument, if any, is a
    /// variable (or absent).
    pub shareable: bool,
    /// The variable carrying the resume argument, and its value in this request.
    pub resume: Option<(Name, Option<u64>)>,
    /// The root field takes a resume argument (`matchUpdated`, `matchEvents`).
    pub resumable: bool,
    /// The position an HTTP stream's `Last-Event-ID` resumes from (see
    /// [`Analysis::resume_from`]).
    pub last_event_id: Option<u64>,
}

impl Analysis {
    /// The position this subscriber resumes from: the larger of its resume argument and its
    /// `Last-Event-ID`, if either is set.
    pub fn since(&self) -> Option<u64> {
        let argument = self.resume.as_ref().and_then(|(_, v)| *v);
        match (argument, self.last_event_id) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// Resumes from `position` (an HTTP stream's `Last-Event-ID`), exactly as the resume
    /// argument would: the request carries it for the resolver ([`ResumeFrom`]: the larger of
    /// the two wins), and a shared subscriber is served its replay before going live. A
    /// subscription without a resume argument (`matchesUpdated`) ignores it: its positions are
    /// per match.
    pub fn resume_from(&mut self, request: Request, position: u64) -> Request {
        if !self.resumable {
            return request;
        }
        self.last_event_id = Some(position);
        request.data(ResumeFrom(position))
    }
}

/// Reads what fan-out needs from a request; `None` for anything that is not a subscription
/// (queries and mutations over WebSocket) or does not parse (the execution reports the error).
pub fn analyze(request: &Request) -> Option<Analysis> {
    let document = async_graphql::parser::parse_query(&request.query).ok()?;
    let operation = match (&document.operations, request.operation_name.as_deref()) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name)?,
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next()?,
        _ => return None,
    };
    if operation.node.ty != OperationType::Subscription {
        return None;
    }
    let items = &operation.node.selection_set.node.items;
    let field = match items.as_slice() {
        [one] => match &one.node {
            Selection::Field(field) => field,
            // A fragment at the root: served per subscriber, never dropping frames.
            _ => {
                return Some(Analysis {
                    policy: Policy::CloseOnOverflow,
                    shareable: false,
                    resume: None,
                    resumable: false,
                    last_event_id: None,
                })
            }
        },
        _ => {
            return Some(Analysis {
                policy: Policy::CloseOnOverflow,
                shareable: false,
                resume: None,
                resumable: false,
                last_event_id: None,
            })
        }
    };
    let (policy, resume_arg) = match field.node.name.node.as_str() {
        "matchUpdated" => (Policy::Conflate, Some("sinceVersion")),
        "matchesUpdated" => (Policy::Conflate, None),
        "matchEvents" => (Policy::CloseOnOverflow, Some("afterSeq")),
        _ => (Policy::CloseOnOverflow, None),
    };
    let resume_value = resume_arg.and_then(|arg| {
        field
            .node
            .arguments
            .iter()
            .find(|(name, _)| name.node.as_str() == arg)
            .map(|(_, value)| &value.node)
    });
    let (shareable, resume) = match resume_value {
        None | Some(async_graphql_value::Value::Null) => (true, None),
        Some(async_graphql_value::Value::Variable(var)) => match request.variables.get(var) {
            None | Some(Value::Null) => (true, Some((var.clone(), None))),
            Some(Value::Number(n)) if n.as_u64().is_some() => {
                (true, Some((var.clone(), n.as_u64())))
            }
            // Invalid: executed on its own, which reports the error to this subscriber.
            Some(_) => (false, None),
        },
        // A literal resume argument makes the text itself differ per subscriber.
        Some(_) => (false, None),
    };
    Some(Analysis {
        policy,
        shareable,
        resume,
        resumable: resume_arg.is_some(),
        last_event_id: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str, variables: serde_json::Value) -> Request {
        Request::new(query).variables(async_graphql::Variables::from_json(variables))
    }

    #[test]
    fn resume_variables_are_found_and_literal_resume_arguments_are_not_shared() {
        let a = analyze(&request(
            "subscription($id: ID!, $v: Int) { matchUpdated(id: $id, sinceVersion: $v) { version } }",
            serde_json::json!({"id": "m", "v": 4}),
        ))
        .unwrap();
        assert_eq!(a.policy, Policy::Conflate);
        assert!(a.shareable);
        assert_eq!(a.resume, Some((Name::new("v"), Some(4))));

        let b = analyze(&request(
            "subscription { matchEvents(matchId: \"m\", afterSeq: 3) { seq } }",
            serde_json::json!({}),
        ))
        .unwrap();
        assert_eq!(b.policy, Policy::CloseOnOverflow);
        assert!(!b.shareable);

        let c = analyze(&request(
            "subscription { matchesUpdated { id } }",
            serde_json::json!({}),
        ))
        .unwrap();
        assert!(c.shareable && c.resume.is_none() && c.policy == Policy::Conflate);
        assert!(!c.resumable);

        assert!(analyze(&request(
            "{ match(id: \"m\") { id } }",
            serde_json::json!({})
        ))
        .is_none());
    }

    #[test]
    fn a_last_event_id_resumes_like_the_argument_and_the_larger_position_wins() {
        let mut absent = analyze(&request(
            "subscription { matchEvents(matchId: \"m\") { seq } }",
            serde_json::json!({}),
        ))
        .unwrap();
        assert!(absent.shareable && absent.resumable && absent.since().is_none());
        let _ = absent.resume_from(Request::new(""), 7);
        assert_eq!(absent.since(), Some(7));

        let mut variable = analyze(&request(
            "subscription($v: Int) { matchUpdated(id: \"m\", sinceVersion: $v) { version } }",
            serde_json::json!({"v": 9}),
        ))
        .unwrap();
        let _ = variable.resume_from(Request::new(""), 4);
        assert_eq!(variable.since(), Some(9));

        let mut unresumable = analyze(&request(
            "subscription { matchesUpdated { id } }",
            serde_json::json!({}),
        ))
        .unwrap();
        let _ = unresumable.resume_from(Request::new(""), 4);
        assert_eq!(unresumable.since(), None);
    }
}
