//! A server on 127.0.0.1 for the benchmarks to call, on its own thread and
//! runtime so the measured side keeps its threads to itself.

/// The name of every loopback server's thread.
pub const THREAD_NAME: &str = "loopback";

/// Serves `app` on 127.0.0.1, a free port, until the process ends; returns
/// the port.
pub fn serve(app: axum::Router) -> u16 {
    let (sender, receiver) = std::sync::mpsc::channel();
    // Named, so a benchmark can tell this thread's CPU time from the host's.
    let thread = std::thread::Builder::new().name(THREAD_NAME.into());
    let _ = thread.spawn(move || {
        let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("server runtime");
        tokio.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            sender.send(listener.local_addr().expect("address").port()).expect("port");
            axum::serve(listener, app).await.expect("serve");
        });
    });
    receiver.recv().expect("server started")
}
