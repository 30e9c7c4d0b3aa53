//! Stored texts as the engine reads them: each is opened through the
//! document that names it, so a damaged one fails with `corrupt_text` naming
//! that document and its source; and the check, at the end of a call that
//! read text, that no pack it may have read was cut short while it ran
//! (`fault`: such reads see zeros instead of killing the daemon).

use std::sync::Arc;

use rlm::tools::Tool;
use rlm::{ErrorCode, ToolError};

use super::Engine;
use super::docs::DocRow;
use crate::fault;
use crate::store::{Store, StoreError};
use crate::text::Text;

/// Documents a `corrupt_text` error lists by id at most.
const LISTED_DOCS: usize = 20;

/// What every `corrupt_text` message ends with: the next step.
const NEXT_STEP: &str = "the stored copy is damaged and a retry does not help: load the document again from its source with rlm.docs.load (into a new session, or this one) and use the doc_id it returns";

/// The verified text of `doc` (see `Store::text`), or `corrupt_text` naming it.
pub(crate) fn open_text(store: &Store, doc: &DocRow) -> Result<Arc<Text>, ToolError> {
    store.text(&doc.hash).map_err(|e| text_error(store, doc, e))
}

/// [`open_text`] of each of `docs`, in order, their places in the store
/// read at once (`Store::texts`).
pub(crate) fn open_texts(store: &Store, docs: &[&DocRow]) -> Result<Vec<Arc<Text>>, ToolError> {
    let hashes: Vec<&str> = docs.iter().map(|d| d.hash.as_str()).collect();
    store
        .texts(&hashes)?
        .into_iter()
        .zip(docs)
        .map(|(text, doc)| text.map_err(|e| text_error(store, doc, e)))
        .collect()
}

/// The error of a text of `doc` that could not be opened.
fn text_error(store: &Store, doc: &DocRow, e: StoreError) -> ToolError {
    match e {
        StoreError::Corrupt { pack, why, .. } => corrupt(store, doc, &why).with("pack", pack),
        StoreError::MissingBlob { .. } => corrupt(store, doc, "its text is not in the store"),
        e => ToolError::from(e),
    }
}

/// Fails when the pack `text` lies in was found cut short: what was read of
/// it may be zeros. For work about to be committed (a chunking, an index).
pub(crate) fn check_read(store: &Store, doc: &DocRow, text: &Text) -> Result<(), ToolError> {
    if text.damaged() {
        return Err(corrupt(
            store,
            doc,
            "its pack was cut short while it was being read",
        ));
    }
    Ok(())
}

fn corrupt(store: &Store, doc: &DocRow, why: &str) -> ToolError {
    let source = store.document_source(&doc.doc_id).ok().flatten();
    let named = match &source {
        Some(s) => format!("document {} (loaded from {s})", doc.doc_id),
        None => format!("document {}", doc.doc_id),
    };
    let e = ToolError::new(
        ErrorCode::CorruptText,
        format!("the stored text of {named} is damaged: {why}; {NEXT_STEP}"),
    )
    .with("doc_id", doc.doc_id.clone());
    match source {
        Some(s) => e.with("source", s),
        None => e,
    }
}

/// Whether a tool reads stored texts (the others cannot have read a damaged
/// pack, and may have committed what they were asked to: they are not failed
/// for a fault elsewhere).
fn reads_text(tool: Tool) -> bool {
    matches!(
        tool,
        Tool::DocsPeek | Tool::SpanGet | Tool::SearchQuery | Tool::ChunkCreate
    )
}

impl Engine {
    /// [`open_text`] on this engine's store.
    pub(crate) fn text_of(&self, doc: &DocRow) -> Result<Arc<Text>, ToolError> {
        open_text(&self.inner.store, doc)
    }

    /// After a call of `tool` on `session_id` that began when the fault
    /// count was `faults_before`: if a pack was found cut short meanwhile and
    /// the session has documents in it, the call may have read zeros where
    /// text was, and fails with `corrupt_text` naming the pack and those
    /// documents. The damaged mappings leave the caches, the texts the packs
    /// no longer hold are forgotten (so a load stores them afresh), and the
    /// scan cache is emptied.
    pub(crate) fn damage_check(
        &self,
        tool: Tool,
        session_id: Option<&str>,
        faults_before: u64,
    ) -> Result<(), ToolError> {
        if fault::faults() == faults_before || !reads_text(tool) {
            return Ok(());
        }
        let store = &self.inner.store;
        let packs = store.damaged_packs_since(faults_before);
        if packs.is_empty() {
            return Ok(());
        }
        self.inner
            .scan_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        let docs = match session_id {
            Some(sid) => store.documents_in_packs(sid, &packs)?,
            None => Vec::new(),
        };
        for pack in &packs {
            let len = store.pack_len(pack).unwrap_or(0);
            if let Err(e) = store.forget_blobs_past(pack, len) {
                tracing::warn!(%pack, error = %e, "could not forget the texts of a damaged pack");
            }
        }
        tracing::warn!(packs = ?packs, documents = docs.len(), "packs were cut short while mapped");
        let Some((first, source)) = docs.first() else {
            return Ok(());
        };
        let ids: Vec<&str> = docs.iter().map(|(d, _)| d.as_str()).collect();
        let more = match docs.len() {
            1 => String::new(),
            n => format!(
                " and {} more of this session ({}{})",
                n - 1,
                ids[1..ids.len().min(LISTED_DOCS)].join(", "),
                if n > LISTED_DOCS { ", ..." } else { "" }
            ),
        };
        Err(ToolError::new(
            ErrorCode::CorruptText,
            format!(
                "pack {} holding document {first} (loaded from {source}){more} was cut short while this call read it, so what it read may not be the stored text; {NEXT_STEP}",
                packs.join(", ")
            ),
        )
        .with("doc_id", first.clone())
        .with("source", source.clone())
        .with("doc_ids", ids[..ids.len().min(LISTED_DOCS)].to_vec())
        .with("pack", packs.join(", ")))
    }
}
