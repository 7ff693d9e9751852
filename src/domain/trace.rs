//! W3C Trace Context (`traceparent`, `tracestate`) as a create request brings it: kept with
//! the notification and continued on every provider call, so the provider's spans join the
//! caller's trace. A header that does not follow the format is ignored, as the
//! recommendation says, never a reason to refuse the request.

use rand::Rng;

/// The longest `tracestate` kept (the recommendation's 32 members fit well inside).
const MAX_TRACESTATE: usize = 512;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceContext {
    /// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, lower case.
    pub traceparent: String,
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// The context of `traceparent` (and `tracestate`), or None when it is not valid.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<TraceContext> {
        let value = traceparent.trim();
        let parts: Vec<&str> = value.split('-').collect();
        let [version, trace_id, parent_id, flags, ..] = parts.as_slice() else {
            return None;
        };
        let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let zeros = |s: &str| s.bytes().all(|b| b == b'0');
        // Version 00 has exactly four fields; a later version may append more, and the first
        // four keep their meaning. ff is forbidden.
        let valid = hex(version, 2)
            && *version != "ff"
            && (parts.len() == 4 || *version != "00")
            && hex(trace_id, 32)
            && !zeros(trace_id)
            && hex(parent_id, 16)
            && !zeros(parent_id)
            && hex(flags, 2);
        if !valid {
            return None;
        }
        let tracestate = tracestate
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.len() <= MAX_TRACESTATE && s.is_ascii() && !s.contains(['\r', '\n']))
            .map(str::to_string);
        Some(TraceContext {
            traceparent: format!("00-{trace_id}-{parent_id}-{flags}"),
            tracestate,
        })
    }

    pub fn trace_id(&self) -> &str {
        &self.traceparent[3..35]
    }

    /// The span id of the caller's span.
    pub fn parent_id(&self) -> &str {
        &self.traceparent[36..52]
    }

    /// The trace flags (`01`: sampled).
    pub fn flags(&self) -> &str {
        &self.traceparent[53..55]
    }

    /// The context of one provider call made without a span of ours (tracing off): the
    /// same trace, state and flags, a span id of its own.
    pub fn child(&self) -> TraceContext {
        let span: u64 = rand::thread_rng().gen_range(1..=u64::MAX);
        TraceContext {
            traceparent: format!("00-{}-{span:016x}-{}", self.trace_id(), self.flags()),
            tracestate: self.tracestate.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_is_continued_with_a_span_of_its_own() {
        let t = TraceContext::parse(PARENT, Some("congo=t61rcWkgMzE")).expect("valid");
        assert_eq!(t.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let child = t.child().traceparent;
        assert!(
            child.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && child.ends_with("-01"),
            "{child}"
        );
        assert_ne!(&child[36..52], "00f067aa0ba902b7", "a new parent id");
        assert_eq!(
            TraceContext::parse(&child, None).map(|c| c.trace_id().to_string()),
            Some(t.trace_id().into())
        );
        assert_eq!(t.tracestate.as_deref(), Some("congo=t61rcWkgMzE"));
    }

    #[test]
    fn malformed_traceparents_are_ignored() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad, None), None, "{bad:?}");
        }
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes";
        assert!(
            TraceContext::parse(later, None).is_some(),
            "a later version is read by its first fields"
        );
    }
}
