//! Persisted documents, for every transport (HTTP POST and GET, WebSocket `subscribe`):
//!
//! - **Automatic persisted queries** (Apollo's APQ protocol): a request may carry only
//!   `extensions.persistedQuery = {version: 1, sha256Hash}`. A known hash runs its document; an
//!   unknown one gets `PersistedQueryNotFound` (`extensions.code` `PERSISTED_QUERY_NOT_FOUND`),
//!   and the client sends the document with its hash, which registers it after the hash is
//!   checked. The store is bounded in bytes (`APQ_CACHE_BYTES`; the oldest entries go first).
//! - **Trusted documents** (`PERSISTED_DOCUMENTS`, Apollo's persisted-query manifest): the
//!   documents an app was built with, by id. With `PERSISTED_DOCUMENTS_REQUIRED=anonymous` (or
//!   `all`), anonymous (or all) clients may run only those: a document that is not in the
//!   manifest is refused with `PERSISTED_QUERY_NOT_IN_LIST`, and APQ registration is off for
//!   them, as it would let any document in.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context as _;
use async_graphql::{Request, Value};
use sha2::{Digest, Sha256};

use super::error::{
    BAD_REQUEST, PERSISTED_QUERY_NOT_FOUND, PERSISTED_QUERY_NOT_IN_LIST,
    PERSISTED_QUERY_NOT_SUPPORTED,
};

/// Who may send documents that are not in the manifest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Required {
    /// Anyone (the default; a manifest only saves bandwidth).
    #[default]
    None,
    /// Signed-in clients only: anonymous ones run the manifest's documents only.
    Anonymous,
    /// Nobody: every client runs the manifest's documents only.
    All,
}

/// Why a request's persisted-query extension could not be served.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PersistedError {
    /// Apollo clients look for this exact message (and the code) to send the document.
    #[error("PersistedQueryNotFound")]
    NotFound,
    #[error("PersistedQueryNotSupported")]
    NotSupported,
    #[error("this document is not one of the server's persisted documents: send the id of a persisted document")]
    NotInList,
    #[error("provided sha does not match query")]
    HashMismatch,
    #[error("invalid persistedQuery extension: {0}")]
    Malformed(&'static str),
}

impl PersistedError {
    pub fn code(&self) -> &'static str {
        match self {
            PersistedError::NotFound => PERSISTED_QUERY_NOT_FOUND,
            PersistedError::NotSupported => PERSISTED_QUERY_NOT_SUPPORTED,
            PersistedError::NotInList => PERSISTED_QUERY_NOT_IN_LIST,
            PersistedError::HashMismatch | PersistedError::Malformed(_) => BAD_REQUEST,
        }
    }

    /// Whether the client should keep the request as it is and add the document (APQ), rather
    /// than consider the request malformed.
    pub fn is_negotiation(&self) -> bool {
        matches!(
            self,
            PersistedError::NotFound | PersistedError::NotSupported
        )
    }

    /// The error as a GraphQL error.
    pub fn to_server_error(&self) -> async_graphql::ServerError {
        let mut error = async_graphql::ServerError::new(self.to_string(), None);
        let mut extensions = async_graphql::ErrorExtensionValues::default();
        extensions.set("code", self.code());
        error.extensions = Some(extensions);
        error
    }
}

/// The lowercase hex SHA-256 of a document's text, as APQ and manifests name documents.
pub fn document_hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Registered documents by hash, oldest first out, bounded in bytes.
struct ApqStore {
    documents: HashMap<String, Arc<str>>,
    order: VecDeque<String>,
    bytes: usize,
    capacity: usize,
}

impl ApqStore {
    fn get(&self, hash: &str) -> Option<Arc<str>> {
        self.documents.get(hash).cloned()
    }

    fn insert(&mut self, hash: String, document: &str) {
        let cost = hash.len() + document.len();
        if cost > self.capacity || self.documents.contains_key(&hash) {
            return;
        }
        while self.bytes + cost > self.capacity {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(gone) = self.documents.remove(&oldest) {
                self.bytes -= oldest.len() + gone.len();
            }
        }
        self.bytes += cost;
        self.order.push_back(hash.clone());
        self.documents.insert(hash, Arc::from(document));
    }
}

/// The manifest's documents, by id and by hash of their text.
#[derive(Default)]
struct Manifest {
    by_id: HashMap<String, Arc<str>>,
    by_hash: HashMap<String, Arc<str>>,
}

pub struct PersistedDocuments {
    apq: Option<Mutex<ApqStore>>,
    manifest: Manifest,
    required: Required,
}

/// What APQ and the manifest hold, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PersistedStats {
    pub apq_documents: usize,
    pub apq_bytes: usize,
    pub manifest_documents: usize,
}

impl PersistedDocuments {
    /// APQ bounded to `apq_bytes` (0: no APQ), no manifest.
    pub fn new(apq_bytes: usize) -> Self {
        Self {
            apq: (apq_bytes > 0).then(|| {
                Mutex::new(ApqStore {
                    documents: HashMap::new(),
                    order: VecDeque::new(),
                    bytes: 0,
                    capacity: apq_bytes,
                })
            }),
            manifest: Manifest::default(),
            required: Required::None,
        }
    }

    /// Adds an Apollo persisted-query manifest (`{"format":
    /// "apollo-persisted-query-manifest", "version": 1, "operations": [{id, name, type,
    /// body}]}`) and who must use it.
    pub fn with_manifest(mut self, text: &str, required: Required) -> anyhow::Result<Self> {
        #[derive(serde::Deserialize)]
        struct File {
            format: String,
            version: u32,
            operations: Vec<Operation>,
        }
        #[derive(serde::Deserialize)]
        struct Operation {
            id: String,
            body: String,
        }
        let file: File = serde_json::from_str(text).context("not a persisted-query manifest")?;
        anyhow::ensure!(
            file.format == "apollo-persisted-query-manifest" && file.version == 1,
            "unknown manifest format {:?} version {} (expected apollo-persisted-query-manifest 1)",
            file.format,
            file.version
        );
        for op in file.operations {
            let body: Arc<str> = Arc::from(op.body);
            self.manifest
                .by_hash
                .insert(document_hash(&body), body.clone());
            self.manifest.by_id.insert(op.id.to_ascii_lowercase(), body);
        }
        self.required = required;
        Ok(self)
    }

    /// Reads a manifest file.
    pub fn with_manifest_file(self, path: &Path, required: Required) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading PERSISTED_DOCUMENTS {}", path.display()))?;
        self.with_manifest(&text, required)
            .with_context(|| format!("loading PERSISTED_DOCUMENTS {}", path.display()))
    }

    pub fn stats(&self) -> PersistedStats {
        let (apq_documents, apq_bytes) = self
            .apq
            .as_ref()
            .map(|s| {
                let s = lock(s);
                (s.documents.len(), s.bytes)
            })
            .unwrap_or_default();
        PersistedStats {
            apq_documents,
            apq_bytes,
            manifest_documents: self.manifest.by_id.len(),
        }
    }

    /// Gives `request` its document: from the manifest or the APQ store when it names one by
    /// hash, registering a document sent with its hash; refuses documents the policy does not
    /// allow for this client.
    pub fn resolve(&self, request: &mut Request, anonymous: bool) -> Result<(), PersistedError> {
        let trusted_only = match self.required {
            Required::None => false,
            Required::Anonymous => anonymous,
            Required::All => true,
        };
        let Some(extension) = request.extensions.get("persistedQuery") else {
            if trusted_only
                && !self
                    .manifest
                    .by_hash
                    .contains_key(&document_hash(&request.query))
            {
                return Err(PersistedError::NotInList);
            }
            return Ok(());
        };
        let hash = requested_hash(extension)?;
        if let Some(body) = self.manifest.by_id.get(&hash) {
            if !request.query.is_empty() && request.query != **body {
                return Err(PersistedError::HashMismatch);
            }
            request.query = body.to_string();
            return Ok(());
        }
        if trusted_only {
            return Err(PersistedError::NotInList);
        }
        let Some(store) = &self.apq else {
            return Err(PersistedError::NotSupported);
        };
        if request.query.is_empty() {
            let document = lock(store).get(&hash).ok_or(PersistedError::NotFound)?;
            request.query = document.to_string();
            return Ok(());
        }
        if document_hash(&request.query) != hash {
            return Err(PersistedError::HashMismatch);
        }
        lock(store).insert(hash, &request.query);
        Ok(())
    }
}

fn lock(store: &Mutex<ApqStore>) -> MutexGuard<'_, ApqStore> {
    store.lock().unwrap_or_else(|p| p.into_inner())
}

/// `{"version": 1, "sha256Hash": "<64 hex digits>"}` → the lowercase hash.
fn requested_hash(extension: &Value) -> Result<String, PersistedError> {
    let Value::Object(fields) = extension else {
        return Err(PersistedError::Malformed("not an object"));
    };
    match fields.get("version") {
        Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
        _ => return Err(PersistedError::Malformed("only version 1 is supported")),
    }
    let Some(Value::String(hash)) = fields.get("sha256Hash") else {
        return Err(PersistedError::Malformed("sha256Hash must be a string"));
    };
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(PersistedError::Malformed(
            "sha256Hash must be 64 hexadecimal digits",
        ));
    }
    Ok(hash.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUERY: &str = "{ liveMatches { id } }";

    fn hashed(query: &str, hash: &str) -> Request {
        let mut request = Request::new(query);
        request.extensions.insert(
            "persistedQuery".into(),
            Value::from_json(serde_json::json!({"version": 1, "sha256Hash": hash})).unwrap(),
        );
        request
    }

    fn manifest(body: &str) -> String {
        serde_json::json!({
            "format": "apollo-persisted-query-manifest",
            "version": 1,
            "operations": [{"id": document_hash(body), "name": "Live", "type": "query", "body": body}]
        })
        .to_string()
    }

    #[test]
    fn an_unknown_hash_is_not_found_until_the_document_is_sent_with_it() {
        let documents = PersistedDocuments::new(1024);
        let hash = document_hash(QUERY);
        let mut request = hashed("", &hash);
        assert_eq!(
            documents.resolve(&mut request, true),
            Err(PersistedError::NotFound)
        );
        let mut register = hashed(QUERY, &hash);
        documents.resolve(&mut register, true).unwrap();
        let mut again = hashed("", &hash);
        documents.resolve(&mut again, true).unwrap();
        assert_eq!(again.query, QUERY);
        assert_eq!(
            PersistedError::NotFound.to_string(),
            "PersistedQueryNotFound"
        );
    }

    #[test]
    fn a_document_that_does_not_match_its_hash_is_refused_and_not_stored() {
        let documents = PersistedDocuments::new(1024);
        let wrong = document_hash("{ other }");
        let mut request = hashed(QUERY, &wrong);
        assert_eq!(
            documents.resolve(&mut request, true),
            Err(PersistedError::HashMismatch)
        );
        assert_eq!(documents.stats().apq_documents, 0);
    }

    #[test]
    fn a_malformed_extension_is_refused_with_a_reason() {
        let documents = PersistedDocuments::new(1024);
        let mut request = hashed("", "abc");
        assert!(matches!(
            documents.resolve(&mut request, true),
            Err(PersistedError::Malformed(_))
        ));
    }

    #[test]
    fn the_store_keeps_to_its_byte_budget_dropping_the_oldest() {
        let documents = PersistedDocuments::new(400);
        for i in 0..20 {
            let query = format!("{{ a{i}: __typename }}");
            documents
                .resolve(&mut hashed(&query, &document_hash(&query)), true)
                .unwrap();
        }
        let stats = documents.stats();
        assert!(stats.apq_bytes <= 400, "{stats:?}");
        assert!(stats.apq_documents < 20);
        let newest = "{ a19: __typename }";
        let mut request = hashed("", &document_hash(newest));
        documents.resolve(&mut request, true).unwrap();
        let oldest = "{ a0: __typename }";
        assert_eq!(
            documents.resolve(&mut hashed("", &document_hash(oldest)), true),
            Err(PersistedError::NotFound)
        );
    }

    #[test]
    fn without_a_store_hashes_are_not_supported() {
        let documents = PersistedDocuments::new(0);
        let mut request = hashed("", &document_hash(QUERY));
        assert_eq!(
            documents.resolve(&mut request, true),
            Err(PersistedError::NotSupported)
        );
    }

    #[test]
    fn manifest_documents_run_by_id_and_free_form_ones_are_refused_when_required() {
        let documents = PersistedDocuments::new(1024)
            .with_manifest(&manifest(QUERY), Required::Anonymous)
            .unwrap();
        let mut by_id = hashed("", &document_hash(QUERY));
        documents.resolve(&mut by_id, true).unwrap();
        assert_eq!(by_id.query, QUERY);
        // The same text sent in full is in the list too.
        documents.resolve(&mut Request::new(QUERY), true).unwrap();
        let other = "{ competitions { id } }";
        assert_eq!(
            documents.resolve(&mut Request::new(other), true),
            Err(PersistedError::NotInList)
        );
        // APQ cannot smuggle it in either.
        assert_eq!(
            documents.resolve(&mut hashed(other, &document_hash(other)), true),
            Err(PersistedError::NotInList)
        );
        // Signed-in clients may send any document.
        documents.resolve(&mut Request::new(other), false).unwrap();
    }

    #[test]
    fn a_manifest_of_another_format_is_refused() {
        let error = PersistedDocuments::new(0)
            .with_manifest(
                r#"{"format":"x","version":1,"operations":[]}"#,
                Required::All,
            )
            .err()
            .unwrap();
        assert!(
            error.to_string().contains("unknown manifest format"),
            "{error}"
        );
    }
}
