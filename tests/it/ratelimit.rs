//! The rate limiter across a Redis outage and its return, through a relay to the real Redis
//! that the test cuts and restores: the hand-over between the shared and the local limiter
//! never lets a process exceed its rate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dispatchctl::domain::{Channel, PerChannel};
use dispatchctl::metrics::Metrics;
use dispatchctl::ratelimit::RateLimiter;
use dispatchctl::redis_client::RedisHandle;
use dispatchctl::tls::ClientTlsFiles;
use secrecy::SecretString;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::helpers::{redis_url, wait_for};

/// A TCP relay to Redis on a port that stays the same while it is cut and restored.
struct Relay {
    port: u16,
    target: String,
    tasks: JoinSet<()>,
}

impl Relay {
    async fn start(target: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut relay = Relay {
            port,
            target,
            tasks: JoinSet::new(),
        };
        relay.serve(listener);
        relay
    }

    fn serve(&mut self, listener: TcpListener) {
        let target = self.target.clone();
        self.tasks.spawn(async move {
            let mut links = JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let target = target.clone();
                // Dropped with the accept loop, so a cut closes every open link too.
                links.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
    }

    /// Closes every connection and refuses new ones.
    async fn cut(&mut self) {
        self.tasks.shutdown().await;
    }

    async fn restore(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.serve(listener);
    }
}

/// Starts `n` acquisitions at once and returns the instants at which each may send.
fn acquire_many(limiter: &Arc<RateLimiter>, n: usize) -> JoinSet<Instant> {
    let mut set = JoinSet::new();
    for _ in 0..n {
        let limiter = limiter.clone();
        set.spawn(async move {
            limiter.acquire(Channel::Sms).await;
            Instant::now()
        });
    }
    set
}

/// The most sends within any `window`.
fn busiest(mut sends: Vec<Instant>, window: Duration) -> usize {
    sends.sort();
    let mut first = 0;
    let mut most = 0;
    for (i, at) in sends.iter().enumerate() {
        while *at - sends[first] >= window {
            first += 1;
        }
        most = most.max(i - first + 1);
    }
    most
}

#[tokio::test]
async fn one_process_keeps_its_rate_across_a_redis_outage_and_a_master_that_lost_the_key() {
    const RATE: u32 = 10;
    const BURST: usize = 2 * RATE as usize;
    let upstream = redis_url();
    let hostport = upstream
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let mut relay = Relay::start(hostport).await;
    let prefix = format!("rl{}:", uuid::Uuid::new_v4().simple());
    let handle = Arc::new(RedisHandle::new(
        &SecretString::from(format!("redis://127.0.0.1:{}/0", relay.port)),
        &ClientTlsFiles::default(),
        prefix.clone(),
    ));
    handle.ping().await.expect("Redis answers through the relay");
    let metrics = Arc::new(Metrics::new());
    let limiter = Arc::new(RateLimiter::new(
        handle.clone(),
        PerChannel::from_fn(|_| RATE),
        metrics.clone(),
    ));

    // Two seconds of slots reserved in Redis, then Redis goes away while they are used.
    let mut shared = acquire_many(&limiter, BURST);
    let direct = redis::Client::open(upstream).unwrap();
    let mut direct = direct.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{prefix}ratelimit:sms");
    let reserved = wait_for(Duration::from_secs(10), || {
        let mut direct = direct.clone();
        let key = key.clone();
        async move {
            let ttl: i64 = redis::cmd("PTTL")
                .arg(&key)
                .query_async(&mut direct)
                .await
                .unwrap_or(-2);
            ttl > 2_500
        }
    })
    .await;
    assert!(reserved, "the burst reserved its slots in Redis");
    relay.cut().await;
    let mut alone = acquire_many(&limiter, BURST);
    let fell_back = wait_for(Duration::from_secs(10), || async {
        metrics.rate_limit_fallback.with_label_values(&["sms"]).get() == BURST as u64
    })
    .await;
    assert!(fell_back, "the limiter decides alone while Redis is away");

    // Redis returns as a promoted replica that never saw the key.
    relay.restore().await;
    let _: () = redis::cmd("DEL").arg(&key).query_async(&mut direct).await.unwrap();
    let back = wait_for(Duration::from_secs(10), || async { handle.ping().await.is_ok() }).await;
    assert!(back, "Redis answers through the relay again");
    let fallbacks = metrics.rate_limit_fallback.with_label_values(&["sms"]).get();
    let mut again = acquire_many(&limiter, BURST);

    let mut sends = Vec::new();
    for set in [&mut shared, &mut alone, &mut again] {
        while let Some(at) = set.join_next().await {
            sends.push(at.unwrap());
        }
    }
    assert_eq!(
        metrics.rate_limit_fallback.with_label_values(&["sms"]).get(),
        fallbacks,
        "shared again once Redis answered"
    );
    let most = busiest(sends, Duration::from_secs(1));
    assert!(
        most <= RATE as usize + 1,
        "{most} sends within one second at a limit of {RATE}/s"
    );
}
