//! `rlmd::server::run` as a library call: a daemon in the test's own process,
//! on a socket in its temp dir, served and stopped through its shutdown
//! future, with the calls in flight finishing first.

use std::time::Duration;

use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::traits::tokio::Stream as _;
use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName};
use serde_json::json;

use rlm::protocol::{
    Call, CallOutcome, Envelope, Hello, MAX_FRAME_BYTES, PROTOCOL_VERSION, Request, Response,
    read_frame, write_frame,
};
use rlmd::server::{self, ServerConfig, StopReason};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_calls_in_process_and_stops_when_its_shutdown_completes() {
    let dir = tempfile::Builder::new()
        .prefix("rs")
        .tempdir_in("/tmp")
        .unwrap();
    let socket = dir.path().join("d.sock");
    let engine = Engine::open(EngineConfig::new(dir.path().join("data"))).unwrap();
    let name = socket.as_path().to_fs_name::<GenericFilePath>().unwrap();
    let listener = ListenerOptions::new()
        .name(name.clone())
        .create_tokio()
        .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let config = ServerConfig {
        socket: socket.clone(),
        auto_started: false,
        idle_timeout: None,
        allowed_uid: None,
    };
    let daemon = tokio::spawn(server::run(engine, config, listener, async {
        let _ = stop_rx.await;
    }));

    let stream = Stream::connect(name)
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
    let sid = match recv(&stream).await {
        Envelope {
            id: Some(1),
            body:
                Response::Result {
                    outcome: CallOutcome::Ok { result },
                },
        } => result["session_id"].as_str().unwrap().to_owned(),
        other => panic!("unexpected answer: {other:?}"),
    };
    // A relative path resolves against the cwd of the hello, not the test's.
    std::fs::write(dir.path().join("notes.txt"), "written beside the client").unwrap();
    send(
        &stream,
        &Envelope::new(
            2,
            Request::Call(Call {
                tool: "rlm.docs.load".into(),
                arguments: json!({"session_id": sid, "sources": [{"type": "file", "path": "notes.txt"}]}),
                progress: true,
            }),
        ),
    )
    .await;
    // Its progress shows the load is in flight: shut down now; its result must still arrive.
    match recv(&stream).await {
        Envelope {
            id: Some(2),
            body: Response::Progress { .. },
        } => {}
        other => panic!("expected the load's progress first: {other:?}"),
    }
    stop_tx.send(()).unwrap();
    let loaded = match recv(&stream).await {
        Envelope {
            id: Some(2),
            body:
                Response::Result {
                    outcome: CallOutcome::Ok { result },
                },
        } => result,
        other => panic!("unexpected answer: {other:?}"),
    };
    assert_eq!(loaded["loaded_count"], 1, "{loaded}");
    let reason = tokio::time::timeout(Duration::from_secs(30), daemon)
        .await
        .expect("run returns")
        .unwrap()
        .unwrap();
    assert_eq!(reason, StopReason::Shutdown);
}
