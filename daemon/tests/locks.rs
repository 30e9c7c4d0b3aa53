//! The session lock seen from outside: `rlm.session.close` persists the index
//! under it, and a call waiting for it never holds up a tokio worker of
//! `rlmd::server::run`.

#[allow(unused_imports)]
mod common;

use std::path::Path;
use std::time::Duration;

use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::traits::tokio::Stream as _;
use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName};
use serde_json::{Value, json};

use common::{Env, ok};
use rlm::protocol::{
    Call, CallOutcome, Envelope, Hello, MAX_FRAME_BYTES, PROTOCOL_VERSION, Request, Response,
    read_frame, write_frame,
};
use rlmd::server::{self, ServerConfig};
use rlmd::store::layout::{LOCKS_DIR, SEARCH_DIR, SEARCH_INDEX_DIR};
use rlmd::store::lock::SessionLock;
use rlmd::{Engine, EngineConfig};

// ---------------------------------------------------------------- close persists the index

/// The generation and document count an index folder's last commit covers,
/// read from tantivy's `meta.json` as a later daemon reads it.
fn stamp_in(index_dir: &Path) -> Option<Value> {
    let meta = std::fs::read(index_dir.join("meta.json")).ok()?;
    let meta: Value = serde_json::from_slice(&meta).ok()?;
    serde_json::from_str(meta["payload"].as_str()?).ok()
}

#[test]
fn close_persists_an_index_no_search_built() {
    // Background indexing is off (`Env`): nothing builds the index but close.
    let env = Env::new();
    let sid = env.session();
    env.load_all(
        &sid,
        &["the quick brown fox", "jumps over the lazy dog", "a needle"],
    );
    let index_dir = env.data().join(SEARCH_DIR).join(SEARCH_INDEX_DIR);
    assert_eq!(
        env.info(&sid)["index_built"],
        false,
        "no index before close"
    );
    assert!(
        stamp_in(&index_dir).is_none(),
        "no index folder before close"
    );

    env.call("rlm.session.close", json!({"session_id": sid}));

    let stamp = stamp_in(&index_dir).expect("close left a committed index on disk");
    assert!(stamp["index_id"].is_string(), "{stamp}");
    // A new engine (a restart, another daemon) sees it as current and searches
    // without building.
    let engine = env.reopen();
    let info = ok(
        "info",
        engine.call("rlm.session.info", json!({"session_id": sid}), &env.ctx),
    );
    assert_eq!(info["index_built"], true, "{info}");
    let found = ok(
        "search",
        engine.call(
            "rlm.search.query",
            json!({"session_id": sid, "query": "needle"}),
            &env.ctx,
        ),
    );
    assert_eq!(found["index_built_this_call"], false, "{found}");
    assert_eq!(found["total_matches"], 1, "{found}");
}

#[test]
fn closing_an_empty_session_builds_nothing_and_a_second_close_still_fails() {
    let env = Env::new();
    let sid = env.session();
    env.call("rlm.session.close", json!({"session_id": sid}));
    assert!(!env.data().join(SEARCH_DIR).join(SEARCH_INDEX_DIR).exists());
    let err = env.fail("rlm.session.close", json!({"session_id": sid}));
    assert_eq!(err.code, rlm::ErrorCode::SessionClosed);
}

// ---------------------------------------------------------------- a waiting call holds no worker

/// Long enough for any answer on a loaded machine, far below the 600 s a call
/// waits for a session lock: a worker blocked by the lock shows as a miss.
const ANSWER: Duration = Duration::from_secs(60);

async fn send(stream: &Stream, message: Envelope<Request>) {
    let mut w = stream;
    write_frame(&mut w, &message)
        .await
        .expect("a frame is written");
}

async fn recv(stream: &Stream) -> Envelope<Response> {
    let mut r = stream;
    tokio::time::timeout(
        ANSWER,
        read_frame::<_, Envelope<Response>>(&mut r, MAX_FRAME_BYTES),
    )
    .await
    .expect("an answer while the locked call waits: the runtime is not blocked")
    .expect("a readable frame")
    .expect("not the end of the stream")
}

async fn connect(name: &interprocess::local_socket::Name<'static>, cwd: &Path) -> Stream {
    let stream = Stream::connect(name.clone()).await.expect("connects");
    send(
        &stream,
        Envelope::connection(Request::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            client_name: "locks-test".into(),
            client_version: "0".into(),
            cwd: Some(cwd.to_owned()),
            settings: Default::default(),
        })),
    )
    .await;
    assert!(matches!(recv(&stream).await.body, Response::Welcome(_)));
    stream
}

fn call(id: u64, tool: &str, arguments: Value) -> Envelope<Request> {
    Envelope::new(
        id,
        Request::Call(Call {
            tool: tool.into(),
            arguments,
            progress: false,
        }),
    )
}

async fn result_of(stream: &Stream, id: u64) -> Value {
    match recv(stream).await {
        Envelope {
            id: Some(got),
            body:
                Response::Result {
                    outcome: CallOutcome::Ok { result },
                },
        } if got == id => result,
        other => panic!("expected the result of call {id}, got {other:?}"),
    }
}

async fn calls_in_flight(stream: &Stream, id: u64) -> u64 {
    send(stream, Envelope::new(id, Request::Status)).await;
    match recv(stream).await {
        Envelope {
            id: Some(got),
            body: Response::Status { status },
        } if got == id => status.calls_in_flight,
        other => panic!("expected the status {id}, got {other:?}"),
    }
}

/// The daemon runs on a runtime of one worker thread (`current_thread`) of
/// its own: a call that waited for the session lock on that thread would stop
/// every other connection and request, while the test's client side, on
/// another runtime, sees its answers miss their deadline.
#[tokio::test(flavor = "current_thread")]
async fn a_call_waiting_for_a_session_lock_leaves_the_runtime_serving() {
    let dir = tempfile::Builder::new()
        .prefix("lk")
        .tempdir_in("/tmp")
        .unwrap();
    let data = dir.path().join("data");
    let socket = dir.path().join("d.sock");
    let name = socket
        .clone()
        .to_fs_name::<GenericFilePath>()
        .unwrap()
        .into_owned();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
    let daemon = {
        let (data, name) = (data.clone(), name.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let mut config = EngineConfig::new(&data);
                config.background_index = false;
                let engine = Engine::open(config).unwrap();
                let listener = ListenerOptions::new().name(name).create_tokio().unwrap();
                ready_tx.send(()).unwrap();
                server::run(
                    engine,
                    ServerConfig {
                        socket,
                        auto_started: false,
                        idle_timeout: None,
                        release_caches_after: None,
                        allowed_uid: None,
                        drain_timeout: rlmd::server::DRAIN_TIMEOUT,
                        max_connections: rlmd::server::MAX_CONNECTIONS,
                        large_requests_bytes: 256 << 20,
                    },
                    listener,
                    async {
                        let _ = stop_rx.await;
                    },
                )
                .await
            })
        })
    };
    ready_rx.await.expect("the daemon listens");

    let first = connect(&name, dir.path()).await;
    send(&first, call(1, "rlm.session.create", json!({}))).await;
    let sid = result_of(&first, 1).await["session_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Another holder (as another daemon would) takes the session's lock; the
    // close must wait for it.
    let held = SessionLock::acquire(&data.join(LOCKS_DIR), &sid, Duration::from_secs(5))
        .expect("the test takes the session's lock");
    send(
        &first,
        call(2, "rlm.session.close", json!({"session_id": sid})),
    )
    .await;
    // The close is in flight (counted until its result is written).
    let mut status_id = 100;
    let deadline = tokio::time::Instant::now() + ANSWER;
    while calls_in_flight(&first, status_id).await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the close never showed as in flight"
        );
        status_id += 1;
        tokio::task::yield_now().await;
    }

    // Meanwhile the runtime serves: another connection makes and reads its own
    // session (calls that go through the blocking pool and the writer task),
    // and the first connection still answers status with the close pending.
    let second = connect(&name, dir.path()).await;
    send(&second, call(1, "rlm.session.create", json!({}))).await;
    let other = result_of(&second, 1).await["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    send(
        &second,
        call(2, "rlm.session.info", json!({"session_id": other})),
    )
    .await;
    assert_eq!(result_of(&second, 2).await["status"], "active");
    assert_eq!(
        calls_in_flight(&first, status_id + 1).await,
        1,
        "the close still waits for the lock"
    );

    // Let go: the close goes through.
    drop(held);
    let closed = result_of(&first, 2).await;
    assert_eq!(closed["status"], "completed", "{closed}");

    stop_tx.send(()).unwrap();
    daemon
        .join()
        .expect("the daemon's thread ends")
        .expect("run returns");
}
