//! `amqps://` connections with the process's own rustls configuration: the system roots plus
//! RABBITMQ_CA_FILE, and the client certificate of RABBITMQ_CERT_FILE/RABBITMQ_KEY_FILE (from
//! PEM, where lapin's own TLS wants PKCS#12). The broker's name is checked as in the URL.
//! Logging in by the certificate is the URL's `?auth_mechanism=external`, as lapin reads it.

use std::sync::Arc;
use std::time::Duration;

use lapin::tcp::{RustlsConnector, TcpStream};
use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties};

use crate::tls::{client_config, ClientTlsFiles};

/// The TLS side of the broker's endpoints, built once: loading the system roots takes
/// milliseconds that each reconnect would otherwise pay again.
#[derive(Clone)]
pub struct AmqpTls {
    config: Result<Arc<rustls::ClientConfig>, String>,
}

impl AmqpTls {
    pub fn new(files: &ClientTlsFiles) -> AmqpTls {
        AmqpTls {
            config: client_config(files).map(Arc::new).map_err(|e| e.to_string()),
        }
    }
}

/// Opens an `amqps://` connection; `url` is known to parse (config checked it).
// The closure's error type is lapin's (HandshakeError, large); it is not ours to box.
#[allow(clippy::result_large_err)]
pub(crate) async fn connect(
    url: &str,
    props: ConnectionProperties,
    tls: &AmqpTls,
    timeout: Duration,
) -> Result<Connection, String> {
    let config = tls.config.clone()?;
    let uri: AMQPUri = url.parse().map_err(|e: String| format!("not an AMQP URL ({e})"))?;
    let connector = RustlsConnector::from(config);
    // lapin runs this on a blocking thread and finishes a handshake that would block.
    let open = Box::new(move |uri: &AMQPUri| {
        let address = format!("{}:{}", uri.authority.host, uri.authority.port);
        let stream = TcpStream::connect_timeout(address, timeout)?;
        let stream = stream.into_rustls(&connector, &uri.authority.host)?;
        stream.set_nonblocking(true)?;
        Ok(stream)
    });
    Connection::connector(uri, open, props)
        .await
        .map_err(|e| crate::tls::describe(&e).unwrap_or_else(|| e.to_string()))
}
