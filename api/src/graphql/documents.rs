//! Parsed documents by query text. Apps send the same few operations over and over, and for a
//! small query like `match(id)` parsing is the largest single cost of a request; with the
//! document cached, a request is validated and executed only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use async_graphql::Request;

/// Distinct documents kept; beyond it the cache starts over (a bounded cache that a client
/// sending endless distinct queries cannot grow).
const CAPACITY: usize = 1024;
/// Longer query texts are parsed every time (they are rare and would dominate the memory).
const MAX_QUERY_LEN: usize = 16 * 1024;

#[derive(Default)]
pub struct DocumentCache {
    documents: Mutex<HashMap<String, Arc<ExecutableDocument>>>,
}

impl DocumentCache {
    /// Gives `request` its parsed document, from the cache or parsed now, and returns it. A
    /// query that does not parse is left alone: the execution reports the error as usual.
    pub fn prepare(&self, request: &mut Request) -> Option<Arc<ExecutableDocument>> {
        let document = self.document(request)?;
        request.set_parsed_query((*document).clone());
        Some(document)
    }

    /// The parsed document of `request`, from the cache or parsed now, without giving it to
    /// the request (execution takes a copy it can change; an answer from the response cache
    /// needs none). `None` when the query does not parse.
    pub fn document(&self, request: &Request) -> Option<Arc<ExecutableDocument>> {
        if request.query.len() > MAX_QUERY_LEN {
            return None;
        }
        let cached = self.lock().get(&request.query).cloned();
        let document = match cached {
            Some(document) => document,
            None => {
                let Ok(parsed) = async_graphql::parser::parse_query(&request.query) else {
                    return None;
                };
                let document = Arc::new(parsed);
                let mut documents = self.lock();
                if documents.len() >= CAPACITY {
                    documents.clear();
                }
                documents.insert(request.query.clone(), document.clone());
                document
            }
        };
        Some(document)
    }

    /// The type of the operation `request` selects in `document`.
    pub fn operation_type(
        document: &ExecutableDocument,
        request: &Request,
    ) -> Option<OperationType> {
        match (&document.operations, request.operation_name.as_deref()) {
            (DocumentOperations::Single(op), _) => Some(op.node.ty),
            (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
            (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
                ops.values().next().map(|op| op.node.ty)
            }
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ExecutableDocument>>> {
        self.documents.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_is_parsed_once_and_bad_queries_are_left_to_the_execution() {
        let cache = DocumentCache::default();
        let mut a = Request::new("{ match(id: \"x\") { id } }");
        cache.prepare(&mut a);
        let mut b = Request::new("{ match(id: \"x\") { id } }");
        cache.prepare(&mut b);
        assert_eq!(cache.len(), 1);
        assert!(a.parsed_query().is_ok() && b.parsed_query().is_ok());

        let mut bad = Request::new("{ match(");
        cache.prepare(&mut bad);
        assert_eq!(cache.len(), 1);
        assert!(bad.parsed_query().is_err(), "the error is still reported");
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = DocumentCache::default();
        for i in 0..CAPACITY + 10 {
            cache.prepare(&mut Request::new(format!("{{ a{i}: __typename }}")));
        }
        assert!(cache.len() <= CAPACITY);
    }
}
