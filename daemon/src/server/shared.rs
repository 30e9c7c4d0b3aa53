//! What every connection of one server shares: the engine and its
//! configuration, the counters `status` reports (connections, calls in
//! flight, calls served, last activity), and the request to stop.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use std::sync::Arc;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use rlm::protocol::{DaemonStatus, PROTOCOL_VERSION};

use super::{DAEMON_VERSION, ServerConfig, StopReason};
use crate::engine::Engine;

pub(super) struct Shared {
    pub(super) engine: Engine,
    pub(super) config: ServerConfig,
    pub(super) started_at: String,
    started: Instant,
    connections: AtomicU64,
    in_flight: AtomicU64,
    served: AtomicU64,
    last_activity: Mutex<Instant>,
    /// Wakes the accept loop when a stop is requested.
    pub(super) stop: Notify,
    stopping: AtomicBool,
    stop_reason: Mutex<Option<StopReason>>,
    /// Wakes the drain when a call ends.
    pub(super) drained: Notify,
    /// Calls running now, daemon-wide ([`super::MAX_CALLS_RUNNING`]).
    pub(super) running: Arc<Semaphore>,
    /// Room for large requests, in bytes ([`super::LARGE_REQUEST_BYTES`]),
    /// and all of it.
    large_requests: Arc<Semaphore>,
    large_requests_room: usize,
    /// Large requests waiting for room now.
    large_requests_waiting: AtomicU64,
}

impl Shared {
    pub(super) fn new(engine: Engine, config: ServerConfig) -> Shared {
        let large_requests_room = config.large_requests_bytes.clamp(1, Semaphore::MAX_PERMITS);
        Shared {
            engine,
            started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            started: Instant::now(),
            connections: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            served: AtomicU64::new(0),
            last_activity: Mutex::new(Instant::now()),
            stop: Notify::new(),
            stopping: AtomicBool::new(false),
            stop_reason: Mutex::new(None),
            drained: Notify::new(),
            running: Arc::new(Semaphore::new(super::MAX_CALLS_RUNNING)),
            large_requests: Arc::new(Semaphore::new(large_requests_room)),
            large_requests_room,
            large_requests_waiting: AtomicU64::new(0),
            config,
        }
    }

    /// Waits for room to read a request of `size` bytes, when it is large
    /// ([`super::LARGE_REQUEST_BYTES`]); the room is given back when the
    /// returned permit drops (its call has run). While its body is read and
    /// decoded a request is there twice (its bytes, and what they decode
    /// to): it takes twice its size until [`Shared::decoded`]. A request
    /// larger than all the room takes all of it, so it is read once nothing
    /// else is held.
    pub(super) async fn room_for_request(&self, size: usize) -> Option<OwnedSemaphorePermit> {
        if size < super::LARGE_REQUEST_BYTES {
            return None;
        }
        let want = size.saturating_mul(2).min(self.large_requests_room);
        // A frame is at most MAX_FRAME_BYTES (256 MiB): twice that is below u32::MAX.
        let want = u32::try_from(want).unwrap_or(u32::MAX);
        let started = Instant::now();
        self.large_requests_waiting.fetch_add(1, Ordering::SeqCst);
        // Never closed, so acquiring cannot fail.
        let permit = self
            .large_requests
            .clone()
            .acquire_many_owned(want)
            .await
            .ok();
        self.large_requests_waiting.fetch_sub(1, Ordering::SeqCst);
        let waited = started.elapsed();
        if waited >= Duration::from_secs(1) {
            tracing::info!(
                request_bytes = size,
                waited_ms = waited.as_millis() as u64,
                room_bytes = self.large_requests_room,
                "a large request waited for room held by other calls (max_large_requests_mb)"
            );
        }
        permit
    }

    /// A request of `size` bytes holding `room` is decoded: its bytes are
    /// gone, and it keeps the room of what they decoded to.
    pub(super) fn decoded(&self, room: &mut OwnedSemaphorePermit, size: usize) {
        let keep = size.min(self.large_requests_room);
        if room.num_permits() > keep {
            drop(room.split(room.num_permits() - keep));
        }
    }

    pub(super) fn touch(&self) {
        *self.last_activity.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    /// How long since the last connection, call or result.
    pub(super) fn quiet_for(&self) -> Duration {
        self.last_activity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }

    pub(super) fn connection_opened(&self) {
        self.connections.fetch_add(1, Ordering::SeqCst);
        self.touch();
    }

    pub(super) fn connection_closed(&self) {
        self.connections.fetch_sub(1, Ordering::SeqCst);
        self.touch();
    }

    pub(super) fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }

    /// A call starts counting as in flight (until [`Shared::finish_call`]).
    pub(super) fn begin_call(&self) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
    }

    /// A call's result was delivered (or its client is gone).
    pub(super) fn finish_call(&self) {
        self.served.fetch_add(1, Ordering::SeqCst);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.touch();
        self.drained.notify_waiters();
    }

    pub(super) fn calls_in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::SeqCst)
    }

    pub(super) fn served(&self) -> u64 {
        self.served.load(Ordering::SeqCst)
    }

    /// Stops the server; the first reason asked for is the one `run` returns.
    pub(super) fn request_stop(&self, reason: StopReason) {
        let mut r = self.stop_reason.lock().unwrap_or_else(|p| p.into_inner());
        if r.is_none() {
            *r = Some(reason);
        }
        self.stopping.store(true, Ordering::SeqCst);
        self.stop.notify_waiters();
        self.stop.notify_one();
    }

    /// From now on, new calls are refused.
    pub(super) fn mark_stopping(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    pub(super) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    pub(super) fn stop_reason(&self) -> Option<StopReason> {
        *self.stop_reason.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn status(&self) -> DaemonStatus {
        let (active, total) = self.engine.session_counts().unwrap_or((0, 0));
        DaemonStatus {
            daemon_version: DAEMON_VERSION.to_owned(),
            protocol_version: PROTOCOL_VERSION,
            pid: std::process::id(),
            started_at: self.started_at.clone(),
            uptime_seconds: self.started.elapsed().as_secs_f64(),
            socket: self.config.socket.clone(),
            data_dir: self.engine.config().data_dir.clone(),
            auto_started: self.config.auto_started,
            connections: self.connections(),
            calls_in_flight: self.calls_in_flight(),
            requests_served: self.served(),
            sessions_active: active,
            sessions_total: total,
            indexes_cached: self.engine.indexes_cached() as u64,
            sessions_known: self.engine.sessions_known() as u64,
            large_requests_held_bytes: (self.large_requests_room
                - self.large_requests.available_permits())
                as u64,
            large_requests_room_bytes: self.large_requests_room as u64,
            large_requests_waiting: self.large_requests_waiting.load(Ordering::SeqCst),
            memory: crate::alloc::process_memory(),
        }
    }
}
