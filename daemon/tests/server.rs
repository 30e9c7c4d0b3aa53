//! `rlmd::server::run` as a library call: a daemon in the test's own process,
//! on a socket in its temp dir, served and stopped through its shutdown
//! future, with the calls in flight finishing first.

use std::time::Duration;

use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::traits::tokio::Stream as _;
use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName};
use serde_json::json;

// `Call` and `CallOutcome` serve the Unix-only in-flight test.
#[cfg_attr(not(unix), allow(unused_imports))]
use rlm::protocol::{
    Call, CallOutcome, Envelope, Hello, MAX_FRAME_BYTES, PROTOCOL_VERSION, Request, Response,
    read_frame, write_frame,
};
use rlmd::server::{self, ServerConfig, StopReason};
#[cfg(unix)]
use rlmd::store::{layout::LOCKS_DIR, lock::SessionLock};
use rlmd::{Engine, EngineConfig};

async fn send(stream: &Stream, req: &Envelope<Request>) {
    let mut w = stream;
    write_frame(&mut w, req).await.expect("a frame is written");
}

async fn recv(stream: &Stream) -> Envelope<Response> {
    let mut r = stream;
    tokio::time::timeout(
        Duration::from_secs(30),
        read_frame::<_, Envelope<Response>>(&mut r, MAX_FRAME_BYTES),
    )
    .await
    .expect("an answer within 30 s")
    .expect("a readable frame")
    .expect("not the end of the stream")
}

/// The answer to request `id`, skipping anything else sent meanwhile.
#[cfg(unix)]
async fn answer_to(stream: &Stream, id: u64) -> Response {
    loop {
        let m = recv(stream).await;
        if m.id == Some(id) && !matches!(m.body, Response::Progress { .. }) {
            return m.body;
        }
    }
}

/// The result of the successful call `id`.
#[cfg(unix)]
async fn result_of(stream: &Stream, id: u64) -> serde_json::Value {
    match answer_to(stream, id).await {
        Response::Result {
            outcome: CallOutcome::Ok { result },
        } => result,
        other => panic!("call {id}: unexpected answer: {other:?}"),
    }
}

#[cfg(unix)]
async fn calls_in_flight(stream: &Stream, id: u64) -> u64 {
    send(stream, &Envelope::new(id, Request::Status)).await;
    match answer_to(stream, id).await {
        Response::Status { status } => status.calls_in_flight,
        other => panic!("unexpected answer to status: {other:?}"),
    }
}

/// A load cannot commit while the test holds its session's lock: it is in
/// flight when shutdown starts, by construction. The daemon runs on its
/// own runtime, shut down the moment `run` returns (as the process exits), so
/// a `run` that stopped without draining would lose the load's result.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_calls_in_process_and_stops_when_its_shutdown_completes() {
    let dir = tempfile::Builder::new()
        .prefix("rs")
        .tempdir_in("/tmp")
        .unwrap();
    let socket = dir.path().join("d.sock");
    // No index build after the load: its thread would still be writing under
    // the folder when the test removes it, and the removal gives up silently.
    let mut engine_config = EngineConfig::new(dir.path().join("data"));
    engine_config.background_index = false;
    engine_config.compact_index = false;
    let engine = Engine::open(engine_config).unwrap();
    let name = socket
        .clone()
        .to_fs_name::<GenericFilePath>()
        .unwrap()
        .into_owned();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (listening_tx, listening_rx) = tokio::sync::oneshot::channel::<()>();
    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel();
    let config = ServerConfig {
        socket: socket.clone(),
        auto_started: false,
        idle_timeout: None,
        release_caches_after: None,
        allowed_uid: None,
        drain_timeout: rlmd::server::DRAIN_TIMEOUT,
        max_connections: rlmd::server::MAX_CONNECTIONS,
        large_requests_bytes: 256 << 20,
    };
    let server_name = name.clone();
    let server_thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let reason = rt.block_on(async move {
            let listener = ListenerOptions::new()
                .name(server_name)
                .create_tokio()
                .unwrap();
            listening_tx.send(()).unwrap();
            server::run(engine, config, listener, async {
                let _ = stop_rx.await;
            })
            .await
        });
        rt.shutdown_background();
        let _ = done_tx.send(reason);
    });
    listening_rx.await.unwrap();

    let stream = Stream::connect(name.clone())
        .await
        .expect("the in-process daemon accepts");
    send(
        &stream,
        &Envelope::connection(Request::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            client_name: "test".into(),
            client_version: "0".into(),
            cwd: Some(dir.path().to_owned()),
            settings: Default::default(),
        })),
    )
    .await;
    assert!(matches!(recv(&stream).await.body, Response::Welcome(w) if w.socket == socket));
    send(
        &stream,
        &Envelope::new(
            1,
            Request::Call(Call {
                tool: "rlm.session.create".into(),
                arguments: json!({}),
                progress: false,
            }),
        ),
    )
    .await;
    let sid = result_of(&stream, 1).await["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Relative paths resolve against the cwd of the hello, not the test's.
    std::fs::write(dir.path().join("notes.txt"), "written beside the client").unwrap();
    std::fs::write(dir.path().join("more.txt"), "streamed through a pipe").unwrap();
    let held = SessionLock::acquire(
        &dir.path().join("data").join(LOCKS_DIR),
        &sid,
        Duration::from_secs(5),
    )
    .unwrap();
    send(
        &stream,
        &Envelope::new(
            2,
            Request::Call(Call {
                tool: "rlm.docs.load".into(),
                arguments: json!({"session_id": sid, "sources": [
                    {"type": "file", "path": "notes.txt"},
                    {"type": "file", "path": "more.txt"},
                ]}),
                progress: true,
            }),
        ),
    )
    .await;
    // The load is in flight (and stays so until the lock is let go).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut status_id = 100;
    while calls_in_flight(&stream, status_id).await != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the load never showed in flight"
        );
        status_id += 1;
    }
    stop_tx.send(()).unwrap();
    // Shutdown has begun once the daemon stops listening.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while Stream::connect(name.clone()).await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon kept listening after its shutdown"
        );
        tokio::task::yield_now().await;
    }
    assert!(
        done_rx.try_recv().is_err(),
        "run returned while a call was in flight"
    );
    drop(held);
    let loaded = result_of(&stream, 2).await;
    assert_eq!(loaded["loaded_count"], 2, "{loaded}");
    assert_eq!(loaded["total_chars"], 25 + 23, "{loaded}");
    let reason = tokio::time::timeout(Duration::from_secs(30), done_rx)
        .await
        .expect("run returns")
        .unwrap()
        .unwrap();
    assert_eq!(reason, StopReason::Shutdown);
    server_thread.join().unwrap();
}

/// A client that sends many calls without reading holds at most
/// `MAX_REQUESTS_IN_FLIGHT` of them in the daemon: the rest wait unread in
/// the socket, and every one is answered once the client reads.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_holds_a_bounded_number_of_calls_in_flight() {
    const CALLS: u64 = 100;
    let dir = tempfile::Builder::new()
        .prefix("rs")
        .tempdir_in("/tmp")
        .unwrap();
    // No index build after each load: the loads are what is measured.
    let mut config = EngineConfig::new(dir.path().join("data"));
    config.background_index = false;
    let (name, stop, daemon) = start_with(dir.path(), false, config);
    let hello = || {
        Envelope::connection(Request::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            client_name: "test".into(),
            client_version: "0".into(),
            cwd: None,
            settings: Default::default(),
        }))
    };
    let greedy = Stream::connect(name.clone()).await.unwrap();
    send(&greedy, &hello()).await;
    assert!(matches!(recv(&greedy).await.body, Response::Welcome(_)));
    let watcher = Stream::connect(name.clone()).await.unwrap();
    send(&watcher, &hello()).await;
    assert!(matches!(recv(&watcher).await.body, Response::Welcome(_)));
    let call = |id: u64, tool: &str, arguments: serde_json::Value| {
        Envelope::new(
            id,
            Request::Call(Call {
                tool: tool.into(),
                arguments,
                progress: false,
            }),
        )
    };
    send(
        &greedy,
        &call(
            1,
            "rlm.session.create",
            json!({"config": {"max_tool_calls": 1000}}),
        ),
    )
    .await;
    let sid = result_of(&greedy, 1).await["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Every load waits for the session's lock, which the test holds.
    let held = SessionLock::acquire(
        &dir.path().join("data").join(LOCKS_DIR),
        &sid,
        Duration::from_secs(5),
    )
    .unwrap();
    for id in 2..2 + CALLS {
        let source = json!({"type": "inline", "content": format!("text {id}")});
        let args = json!({"session_id": sid, "sources": [source]});
        send(&greedy, &call(id, "rlm.docs.load", args)).await;
    }
    let limit = server::MAX_REQUESTS_IN_FLIGHT as u64;
    assert!(limit < CALLS);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut status_id = 1000;
    let mut seen = calls_in_flight(&watcher, status_id).await;
    while seen < limit {
        assert!(
            std::time::Instant::now() < deadline,
            "stuck at {seen} calls in flight"
        );
        status_id += 1;
        seen = calls_in_flight(&watcher, status_id).await;
    }
    assert_eq!(seen, limit, "the connection's calls in flight are bounded");
    for _ in 0..20 {
        status_id += 1;
        assert_eq!(calls_in_flight(&watcher, status_id).await, limit);
    }
    drop(held);
    // Results come in the order the loads commit.
    let mut answered = std::collections::BTreeMap::new();
    while answered.len() < CALLS as usize {
        let m = recv(&greedy).await;
        if let (Some(id), Response::Result { outcome }) = (m.id, m.body) {
            match outcome {
                CallOutcome::Ok { result } => answered.insert(id, result["loaded_count"].clone()),
                other => panic!("call {id}: {other:?}"),
            };
        }
    }
    assert_eq!(
        answered.keys().copied().collect::<Vec<_>>(),
        (2..2 + CALLS).collect::<Vec<_>>()
    );
    assert!(answered.values().all(|n| *n == 1), "{answered:?}");
    stop.send(()).unwrap();
    assert_eq!(daemon.await.unwrap().unwrap(), StopReason::Shutdown);
}

/// An in-process daemon on a socket in `dir`; stopped by sending on the returned channel.
fn start_in(
    dir: &std::path::Path,
    auto_started: bool,
) -> (
    interprocess::local_socket::Name<'static>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<StopReason>>,
) {
    start_with(dir, auto_started, EngineConfig::new(dir.join("data")))
}

/// [`start_in`] with an engine of the given configuration.
fn start_with(
    dir: &std::path::Path,
    auto_started: bool,
    engine_config: EngineConfig,
) -> (
    interprocess::local_socket::Name<'static>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<StopReason>>,
) {
    let socket = dir.join("d.sock");
    let engine = Engine::open(engine_config).unwrap();
    let name = socket
        .clone()
        .to_fs_name::<GenericFilePath>()
        .unwrap()
        .into_owned();
    let listener = ListenerOptions::new()
        .name(name.clone())
        .create_tokio()
        .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let config = ServerConfig {
        socket,
        auto_started,
        idle_timeout: None,
        release_caches_after: None,
        allowed_uid: None,
        drain_timeout: rlmd::server::DRAIN_TIMEOUT,
        max_connections: rlmd::server::MAX_CONNECTIONS,
        large_requests_bytes: 256 << 20,
    };
    let daemon = tokio::spawn(server::run(engine, config, listener, async {
        let _ = stop_rx.await;
    }));
    (name, stop_tx, daemon)
}

/// The answer to a `shutdown_if_idle` sent as `id`: whether it was accepted, and why.
async fn shutdown_if_idle(stream: &Stream, id: u64) -> (bool, String) {
    send(stream, &Envelope::new(id, Request::ShutdownIfIdle)).await;
    match recv(stream).await {
        Envelope {
            id: Some(got),
            body: Response::ShutdownAck { accepted, reason },
        } if got == id => (accepted, reason),
        other => panic!("unexpected answer: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_if_idle_is_decided_alike_before_and_after_the_hello() {
    let dir = tempfile::Builder::new()
        .prefix("rs")
        .tempdir_in("/tmp")
        .unwrap();
    // Not started on demand: it stays, and says why, whoever asks.
    let (name, stop, daemon) = start_in(dir.path(), false);
    let skewed = Stream::connect(name.clone()).await.unwrap();
    let (accepted, before_hello) = shutdown_if_idle(&skewed, 4).await;
    assert!(!accepted);
    assert!(
        before_hello.contains("not started on demand"),
        "{before_hello}"
    );
    let current = Stream::connect(name).await.unwrap();
    send(
        &current,
        &Envelope::connection(Request::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            client_name: "test".into(),
            client_version: "0".into(),
            cwd: None,
            settings: Default::default(),
        })),
    )
    .await;
    assert!(matches!(recv(&current).await.body, Response::Welcome(_)));
    let (accepted, after_hello) = shutdown_if_idle(&current, 5).await;
    assert!(!accepted);
    assert_eq!(after_hello, before_hello);
    stop.send(()).unwrap();
    let reason = daemon.await.unwrap().unwrap();
    assert_eq!(reason, StopReason::Shutdown);

    // Started on demand and idle: a client of another version makes room.
    let dir = tempfile::Builder::new()
        .prefix("rs")
        .tempdir_in("/tmp")
        .unwrap();
    let (name, _stop, daemon) = start_in(dir.path(), true);
    let skewed = Stream::connect(name).await.unwrap();
    assert_eq!(
        shutdown_if_idle(&skewed, 1).await,
        (true, "idle; exiting".to_owned())
    );
    let reason = tokio::time::timeout(Duration::from_secs(30), daemon)
        .await
        .expect("run returns")
        .unwrap()
        .unwrap();
    assert_eq!(reason, StopReason::Requested);
}
