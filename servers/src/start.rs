//! [`start`]: binds the sockets a model asks for ([`Model::sockets`]) and hands them to the
//! model. The one place that knows every model.

use std::io;
use std::sync::Once;

use crate::addr::ListenAddr;
use crate::model::Model;
use crate::models::{mio, poll, thread_per_conn, thread_pool, tokio, uring};
use crate::running::{Running, ServerConfig, ServerHandle};
use crate::{datagram, listen};

/// Starts `model` with `config` and returns once it is listening.
pub fn start(model: Model, config: &ServerConfig) -> io::Result<ServerHandle> {
    ignore_sigpipe();
    // Threads inherit it: every model's sleeps and timers end when asked, not up to 50 µs later.
    crate::work::timer::least_timer_slack();
    let threads = config.threads_for(model);
    if let ListenAddr::Udp(addr) = config.addr {
        datagram::check_bind(addr, config.allow_remote)?;
        let guard = datagram::GuardConfig {
            on: config.allow_remote,
            source_rate: config.source_rate,
        };
        // A model with a socket per peer binds the same port again (SO_REUSEPORT) for each.
        let reuse = config.reuse_port || model.udp_socket_per_peer();
        let sockets = listen::bind_udp(addr, model.sockets(threads, true), config.sock_buf, reuse)?;
        let local = sockets[0].local_addr()?;
        // With --work, every datagram is one message.
        let work = config.work.clone();
        let running: Box<dyn Running> = match model {
            Model::ThreadPool => Box::new(thread_pool::udp::start(
                sockets,
                threads,
                config.stack_size,
                guard,
                work,
            )?),
            Model::ThreadPerConn => Box::new(thread_per_conn::udp::start(
                sockets,
                config.stack_size,
                config.peer_idle,
                guard,
                work,
            )?),
            Model::Mio => Box::new(mio::udp::start(sockets, guard, work)?),
            Model::Tokio => Box::new(tokio::udp::start(sockets, threads, guard, work)?),
            Model::Uring => Box::new(uring::start_udp(sockets, guard, work)?),
            Model::Poll => Box::new(poll::udp::start(sockets, guard, work)?),
        };
        return Ok(ServerHandle::new(ListenAddr::Udp(local), running));
    }
    let listeners = listen::bind(
        &config.addr,
        config.backlog,
        model.sockets(threads, false),
        config.sock_buf,
        config.reuse_port,
        config.listen_fd,
    )?;
    let local_addr = listeners[0].local_addr()?;
    let work = config.work.clone();
    let running: Box<dyn Running> = match model {
        Model::ThreadPerConn => Box::new(thread_per_conn::start(listeners, config.stack_size, work)?),
        Model::ThreadPool => Box::new(thread_pool::start(listeners, threads, config.stack_size, work)?),
        Model::Mio => Box::new(mio::start(listeners, work)?),
        Model::Tokio => Box::new(tokio::start(listeners, threads, work)?),
        Model::Uring => Box::new(uring::start_stream(listeners, work)?),
        Model::Poll => Box::new(poll::start(listeners, work)?),
    };
    Ok(ServerHandle::new(local_addr, running))
}

/// Ignores SIGPIPE for the whole process (once). Writing to a socket whose peer has gone
/// then fails with EPIPE instead of killing the process.
fn ignore_sigpipe() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: setting a signal disposition to SIG_IGN has no memory-safety preconditions.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
    });
}
