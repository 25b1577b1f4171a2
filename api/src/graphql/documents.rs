//! Parsed documents by query text, and whether each has passed validation. Apps send the same
//! few operations over and over: with the document cached, a request is not parsed again, and
//! once its document has passed async-graphql's full validation, a later request of it is
//! checked for its variable values only (`variables.rs`) and then executed. For a small query
//! like `match(id)`, parsing and validating are most of the work of an uncached request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, OperationType,
};
use async_graphql::{Request, ValidationResult};

use crate::graphql::variables::InputTypes;

/// Distinct documents kept; beyond it the cache starts over (a bounded cache that a client
/// sending endless distinct queries cannot grow).
const CAPACITY: usize = 1024;
/// Longer query texts are parsed every time (they are rare and would dominate the memory).
const MAX_QUERY_LEN: usize = 16 * 1024;

/// A parsed document and the result of the first full validation it passed.
#[derive(Debug)]
pub struct Document {
    parsed: ExecutableDocument,
    validated: OnceLock<ValidationResult>,
}

impl Document {
    pub fn parsed(&self) -> &ExecutableDocument {
        &self.parsed
    }
}

/// In a request's data: its document passed the full validation before and the request's
/// variables fit it; the schema's validation hook answers with this instead of validating.
#[derive(Clone, Copy)]
pub struct Validated(pub ValidationResult);

/// In a request's data: the document to remember as valid if the full validation passes.
pub struct Validating(pub Arc<Document>);

impl Validating {
    pub fn passed(&self, result: ValidationResult) {
        let _ = self.0.validated.set(result);
    }
}

#[derive(Default)]
pub struct DocumentCache {
    documents: Mutex<HashMap<String, Arc<Document>>>,
    inputs: InputTypes,
}

impl DocumentCache {
    /// A cache whose variable check knows the input types of the schema with this SDL.
    pub fn new(sdl: &str) -> Self {
        Self {
            documents: Mutex::default(),
            inputs: InputTypes::from_sdl(sdl),
        }
    }

    /// Gives `request` its parsed document, from the cache or parsed now, marked for the
    /// schema's validation hook ([`DocumentCache::validation`]); returns the document. A query
    /// that does not parse is left alone: the execution reports the error as usual.
    pub fn prepare(&self, request: &mut Request) -> Option<Arc<Document>> {
        let document = self.document(request)?;
        request.set_parsed_query(document.parsed.clone());
        self.validation(&document, request);
        Some(document)
    }

    /// Marks `request`, whose parsed query is `document`, for the schema's validation hook:
    /// [`Validated`] when the document passed the full validation before and the request's
    /// variable values fit their declared types (nothing left to validate), otherwise
    /// [`Validating`] so that a pass is remembered.
    pub fn validation(&self, document: &Arc<Document>, request: &mut Request) {
        match document.validated.get() {
            None => request.data.insert(Validating(document.clone())),
            Some(result) => {
                let fits = Self::operation(&document.parsed, request)
                    .is_some_and(|op| self.inputs.fit(op, &request.variables));
                if fits {
                    request.data.insert(Validated(*result));
                }
            }
        }
    }

    /// The parsed document of `request`, from the cache or parsed now, without giving it to
    /// the request (execution takes a copy it can change; an answer from the response cache
    /// needs none). `None` when the query does not parse.
    pub fn document(&self, request: &Request) -> Option<Arc<Document>> {
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
                let document = Arc::new(Document {
                    parsed,
                    validated: OnceLock::new(),
                });
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
        Self::operation(document, request).map(|op| op.ty)
    }

    /// The operation `request` selects in `document`, as execution selects it.
    fn operation<'d>(
        document: &'d ExecutableDocument,
        request: &Request,
    ) -> Option<&'d OperationDefinition> {
        match (&document.operations, request.operation_name.as_deref()) {
            (DocumentOperations::Single(op), _) => Some(&op.node),
            (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| &op.node),
            (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
                ops.values().next().map(|op| &op.node)
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Document>>> {
        self.documents.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_is_parsed_once_and_bad_queries_are_left_to_the_execution() {
        let cache = DocumentCache::default();
        let a = cache.document(&Request::new("{ match(id: \"x\") { id } }"));
        let b = cache.document(&Request::new("{ match(id: \"x\") { id } }"));
        assert_eq!(cache.len(), 1);
        assert!(Arc::ptr_eq(&a.unwrap(), &b.unwrap()));

        assert!(cache.document(&Request::new("{ match(")).is_none());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = DocumentCache::default();
        for i in 0..CAPACITY + 10 {
            cache.document(&Request::new(format!("{{ a{i}: __typename }}")));
        }
        assert!(cache.len() <= CAPACITY);
    }
}
