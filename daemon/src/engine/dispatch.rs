//! The one path every tool call takes: look the tool up, check and charge
//! its session as its declaration says, parse its arguments, run its
//! handler, and record the trace. Handlers are registered here, once each.

use std::time::Instant;

use serde_json::Value;

use rlm::tools::{SessionUse, Tool, ToolDef, parse_args_owned, tool};
use rlm::{ErrorCode, ToolError};

use super::trace::redacted_arguments;
use super::{CallContext, CallError, Engine, SessionRow, to_value};

/// A registered handler: arguments in, the result's JSON out.
/// Its arguments are its own: their strings move into the parsed arguments.
type Handler =
    Box<dyn Fn(&Engine, Option<&SessionRow>, Value, &CallContext) -> HandlerResult + Send + Sync>;
type HandlerResult = Result<Value, ToolError>;
/// The handler of a tool charged to the session it names.
type SessionFn<T> = fn(
    &Engine,
    &SessionRow,
    <T as ToolDef>::Args,
    &CallContext,
) -> Result<<T as ToolDef>::Output, ToolError>;
/// The handler of a tool not charged to a session.
type FreeFn<T> =
    fn(&Engine, <T as ToolDef>::Args, &CallContext) -> Result<<T as ToolDef>::Output, ToolError>;

/// The handler of each tool, indexed by [`Tool`].
pub(crate) struct Registry {
    handlers: Vec<Option<Handler>>,
}

impl Registry {
    /// Every tool of the contract with its handler.
    pub(crate) fn new() -> Registry {
        let mut r = Registry {
            handlers: Tool::ALL.iter().map(|_| None).collect(),
        };
        r.free::<tool::SessionCreate>(|e, a, _| e.session_create(a));
        r.session::<tool::SessionInfo>(|e, s, _, _| e.session_info(s));
        r.free::<tool::SessionClose>(|e, a, ctx| e.session_close(&a.session_id, ctx));
        r.session::<tool::DocsLoad>(|e, s, a, ctx| e.docs_load(s, a, ctx));
        r.session::<tool::DocsList>(|e, s, a, _| e.docs_list(s, a));
        r.session::<tool::DocsPeek>(|e, s, a, _| e.docs_peek(s, a));
        r.session::<tool::ChunkCreate>(|e, s, a, ctx| e.chunk_create(s, a, ctx));
        r.session::<tool::SpanGet>(|e, s, a, _| e.span_get(s, a));
        r.session::<tool::SearchQuery>(|e, s, a, ctx| e.search_query(s, a, ctx));
        r.session::<tool::ArtifactStore>(|e, s, a, _| e.artifact_store(s, a));
        r.session::<tool::ArtifactList>(|e, s, a, _| e.artifact_list(s, a));
        r.session::<tool::ArtifactGet>(|e, s, a, _| e.artifact_get(s, a));
        r
    }

    /// Registers the handler of a tool that runs on the session it names,
    /// charged to its budget first.
    fn session<T: ToolDef + 'static>(&mut self, run: SessionFn<T>) {
        self.put::<T>(true, move |engine, session, args, ctx| match session {
            Some(session) => run(engine, session, args, ctx),
            None => Err(ToolError::internal(format!(
                "{} ran without its session",
                T::TOOL.name()
            ))),
        });
    }

    /// Registers the handler of a tool that is not charged to a session
    /// (it makes one, or always goes through).
    fn free<T: ToolDef + 'static>(&mut self, run: FreeFn<T>) {
        self.put::<T>(false, move |engine, _, args, ctx| run(engine, args, ctx));
    }

    /// Registers `run` as the handler of `T`, after checking that its
    /// declaration charges a session exactly when `charged` says so.
    fn put<T: ToolDef + 'static>(
        &mut self,
        charged: bool,
        run: impl Fn(
            &Engine,
            Option<&SessionRow>,
            T::Args,
            &CallContext,
        ) -> Result<T::Output, ToolError>
        + Send
        + Sync
        + 'static,
    ) {
        let tool = T::TOOL;
        assert_eq!(
            tool.spec().session == SessionUse::Charged,
            charged,
            "{} is registered against its declaration's session use",
            tool.name()
        );
        let slot = &mut self.handlers[tool as usize];
        assert!(slot.is_none(), "{} is registered twice", tool.name());
        *slot = Some(Box::new(move |engine, session, args, ctx| {
            to_value(&run(engine, session, parse_args_owned(tool, args)?, ctx)?)
        }));
    }

    fn get(&self, tool: Tool) -> Option<&Handler> {
        self.handlers[tool as usize].as_ref()
    }
}

impl Engine {
    /// Runs one tool call. `name` takes either spelling of a tool name.
    pub fn call(&self, name: &str, args: Value, ctx: &CallContext) -> Result<Value, CallError> {
        let tool = Tool::from_name(name).ok_or_else(|| CallError::UnknownTool(name.to_owned()))?;
        let started = Instant::now();
        // The index's compaction waits while calls come.
        let _call = self.inner.indexes.call();
        let args = if args.is_null() {
            Value::Object(Default::default())
        } else {
            args
        };
        let faults_before = crate::fault::faults();
        // What the trace keeps of the arguments, and the session they name,
        // are taken before the arguments go to the handler, which parses
        // them by moving their strings (a load's text is never copied).
        let traced_arguments = redacted_arguments(tool, &args);
        let named_session = args
            .get("session_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let result = if args.is_object() {
            let result = self.run(tool, args, ctx);
            // Reads of a pack cut short while mapped saw zeros: never served.
            let damage = self.damage_check(tool, named_session.as_deref(), faults_before);
            match result {
                Ok(value) => damage.map(|()| value),
                Err(e) => Err(e),
            }
        } else {
            Err(ToolError::invalid(format!(
                "arguments of {} must be a JSON object, got {}",
                tool.name(),
                json_type(&args)
            )))
        };
        // A store that cannot be written is named, so the user knows where.
        let result = result.map_err(|e| match e.code {
            ErrorCode::StoreReadOnly | ErrorCode::DiskFull => {
                let dir = self.inner.config.data_dir.display().to_string();
                ToolError {
                    message: format!("{} (data directory {dir})", e.message),
                    ..e
                }
                .with("data_dir", dir)
            }
            _ => e,
        });
        let session_id = match (&result, tool.spec().session) {
            (Ok(v), SessionUse::Creates) => v.get("session_id").and_then(Value::as_str),
            _ => named_session.as_deref(),
        };
        self.record_trace(
            tool,
            session_id,
            &traced_arguments,
            &result,
            started.elapsed().as_secs_f64() * 1000.0,
        );
        result.map_err(CallError::Tool)
    }

    /// Checks and charges the session as the tool's declaration says, then
    /// runs its handler.
    fn run(&self, tool: Tool, args: Value, ctx: &CallContext) -> Result<Value, ToolError> {
        let handler = self.inner.registry.get(tool).ok_or_else(|| {
            ToolError::internal(format!("{} has no handler in this daemon", tool.name()))
        })?;
        match tool.spec().session {
            SessionUse::Creates => handler(self, None, args, ctx),
            SessionUse::Uncharged => {
                session_id_of(tool, &args)?;
                handler(self, None, args, ctx)
            }
            SessionUse::Charged => {
                let session = self.charge(&session_id_of(tool, &args)?)?;
                handler(self, Some(&session), args, ctx)
            }
        }
    }
}

/// The session-id field of a call, checked to be a string.
fn session_id_of(tool: Tool, args: &Value) -> Result<String, ToolError> {
    match args.get("session_id") {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(ToolError::invalid(format!(
            "invalid arguments for {}: `session_id` must be a string (the id rlm.session.create returned), got {other}",
            tool.name()
        ))
        .with("field", "session_id")),
        None => Err(ToolError::invalid(format!(
            "invalid arguments for {}: missing `session_id`; create a session with rlm.session.create first",
            tool.name()
        ))
        .with("field", "session_id")),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_one_handler() {
        let registry = Registry::new();
        for t in Tool::ALL {
            assert!(registry.get(t).is_some(), "{} has no handler", t.name());
        }
    }
}
