//! A trace that does not hold its hops: owns [`LazyTrace`], which keeps only where each Received
//! value lies in the (borrowed) message and which stage it took, and rebuilds every hop when it
//! is read or serialized. Its JSON is byte-identical to [`Trace`]'s, so a CLI can stream a trace
//! of hundreds of thousands of hops with memory near the size of the input. The hop model and its
//! numbers are `mod.rs`'s; this file only changes when they are computed.
use std::ops::Range;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use super::stages::StageWalk;
#[cfg(doc)]
use super::Trace;
use super::{
    hop_at, message_warnings, received_values, Created, Hop, Timeline, TraceError, TraceOptions,
};

/// One hop as held by a [`LazyTrace`]: its value's place in the message and its stage index.
#[derive(Debug, Clone)]
struct HopRef {
    value: Range<u32>,
    stage: Option<u32>,
}

/// A message's path whose hops are rebuilt from the message on demand (oldest first).
#[derive(Debug)]
pub struct LazyTrace<'a> {
    raw: &'a [u8],
    opts: TraceOptions<'a>,
    hops: Vec<HopRef>,
    total_ms: Option<i64>,
    created: Created,
    delivered_after_ms: Option<i64>,
    missing_stages: Vec<String>,
    notes: Vec<String>,
}

/// Trace `raw` like [`super::trace_message`], keeping a few bytes per hop instead of the hop.
/// Every hop is built once here (for the total and the stages) and again when read.
pub fn trace_lazy<'a>(raw: &'a [u8], opts: &TraceOptions<'a>) -> Result<LazyTrace<'a>, TraceError> {
    let values = received_values(raw)?;
    let mut timeline = Timeline::new(opts);
    let mut walk = StageWalk::new(opts.stages);
    let mut hops = Vec::with_capacity(values.received.len());
    for v in values.received.iter().rev() {
        let mut hop = hop_at(raw, v);
        timeline.step(&mut hop);
        let stage = walk.step(&hop);
        // mail-parser's offsets are u32 themselves, so these never saturate in practice.
        hops.push(HopRef {
            value: to_u32(v.start)..to_u32(v.end),
            stage: stage.map(to_u32),
        });
    }
    let created = Created::read(raw, values.date.as_ref());
    Ok(LazyTrace {
        raw,
        opts: *opts,
        hops,
        total_ms: timeline.total_ms(),
        delivered_after_ms: created.until(timeline.last()),
        created,
        missing_stages: walk.missing(),
        notes: values.notes,
    })
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl LazyTrace<'_> {
    pub fn hop_count(&self) -> usize {
        self.hops.len()
    }

    pub fn total_ms(&self) -> Option<i64> {
        self.total_ms
    }

    /// Bytes this trace holds besides the borrowed message: its per-hop records, the missing
    /// stage names and the notes. It never includes a copy of the header block.
    pub fn retained_bytes(&self) -> usize {
        self.hops.capacity() * std::mem::size_of::<HopRef>()
            + self
                .missing_stages
                .iter()
                .chain(&self.notes)
                .map(|s| s.capacity() + std::mem::size_of::<String>())
                .sum::<usize>()
    }

    /// The hops, oldest first, each built when the iterator reaches it.
    pub fn hops(&self) -> impl Iterator<Item = Hop> + '_ {
        let mut timeline = Timeline::new(&self.opts);
        self.hops.iter().map(move |r| {
            let mut hop = hop_at(self.raw, &(r.value.start as usize..r.value.end as usize));
            timeline.step(&mut hop);
            hop.stage = r
                .stage
                .and_then(|j| self.opts.stages.get(j as usize))
                .map(|m| m.stage.clone());
            super::providers::name_unlabelled(&mut hop, self.opts.stages);
            hop
        })
    }
}

/// The same fields, in the same order, as [`Trace`]'s derived serialization.
impl Serialize for LazyTrace<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Trace", 7)?;
        st.serialize_field("hops", &HopSeq(self))?;
        st.serialize_field("total_ms", &self.total_ms)?;
        st.serialize_field("created_at", &self.created.at())?;
        st.serialize_field("delivered_after_ms", &self.delivered_after_ms)?;
        st.serialize_field(
            "warnings",
            &message_warnings(self.hops.len(), &self.created),
        )?;
        st.serialize_field("missing_stages", &self.missing_stages)?;
        if self.notes.is_empty() {
            st.skip_field("notes")?;
        } else {
            st.serialize_field("notes", &self.notes)?;
        }
        st.end()
    }
}

/// The hops as a sequence serialized one at a time: each is dropped before the next is built.
struct HopSeq<'t, 'a>(&'t LazyTrace<'a>);

impl Serialize for HopSeq<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.hops())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{trace_message, StageMatcher};

    fn opts(stages: &[StageMatcher]) -> TraceOptions<'_> {
        TraceOptions {
            now: "2027-01-01T00:00:00Z".parse().unwrap(),
            fetched_at: None,
            stages,
        }
    }

    /// Many hops, each about 200 bytes, newest first.
    fn many_hops(n: usize) -> String {
        let mut m = String::new();
        for i in (0..n).rev() {
            m.push_str(&format!(
                "Received: from relay{i}.example.net (relay{i}.example.net [198.51.100.{}])\n\
                 \tby relay{}.example.net (Postfix) with ESMTPS id 4Q{i:08X}\n\
                 \tfor <bob@example.com>; Tue, 4 Nov 2025 {:02}:{:02}:{:02} +0000\n",
                i % 250 + 1,
                i + 1,
                (i / 3600) % 24,
                (i / 60) % 60,
                i % 60
            ));
        }
        m.push_str("Subject: hops\n\nbody\n");
        m
    }

    #[test]
    fn json_is_byte_identical_to_the_held_trace() {
        let matcher = |stage: &str, by: &str| StageMatcher {
            stage: stage.into(),
            by: Some(by.into()),
            from: None,
            from_ip: None,
            protocol: None,
            optional: false,
            role: None,
        };
        let stages = [
            matcher("first", "relay1.example.net"),
            matcher("later", "relay5*"),
            matcher("never", "nowhere.example"),
        ];
        for raw in [
            many_hops(40),
            "Subject: none\n\n".to_owned(),
            "Received: garbage\nReceived: from a by b; 31 Feb 2025 00:00:00 +0000\n\n".to_owned(),
            "Received: from a by b; Tue, 4 Nov 2025 18:12:30 +0000\nDate: Tue, 4 Nov 2025 18:12:29 +0000\n\n".to_owned(),
            "Received: from a by b; Tue, 4 Nov 2025 18:12:30 +0000\nDate: soon\n\n".to_owned(),
            // Provider names and a Gmail ARC note.
            "Received: by 2002:a05:7010:8a0c:b0:3c1:7d2e:98f4 with SMTP id x;\n Tue, 4 Nov 2025 10:12:39 -0800\n\
             ARC-Seal: i=1; a=rsa-sha256; t=1762279958; cv=none; d=google.com; s=arc; b=x\n\
             Received: from o1.example (o1.example [149.72.1.2]) by mx.google.com with ESMTPS id y;\n Tue, 4 Nov 2025 10:12:38 -0800\n\
             Received: by filterdrecv-7bd4646d8d-4qk7x with SMTP id z\n 2025-11-04 18:12:38.520394051 +0000 UTC\n\n"
                .to_owned(),
        ] {
            let o = opts(&stages);
            let held =
                serde_json::to_string_pretty(&trace_message(raw.as_bytes(), &o).unwrap()).unwrap();
            let lazy =
                serde_json::to_string_pretty(&trace_lazy(raw.as_bytes(), &o).unwrap()).unwrap();
            assert_eq!(lazy, held);
            if raw.contains("ARC-Seal") {
                assert!(held.contains("\"gmail-arc: ARC set i=1"), "{held}");
                assert!(held.contains("\"stage\": \"sendgrid-filter\""), "{held}");
            }
        }
        assert_eq!(trace_lazy(b"", &opts(&[])).unwrap_err(), TraceError::Empty);
    }

    #[test]
    fn retained_bytes_are_a_small_record_per_hop_not_the_headers() {
        let n = 2_000;
        let raw = many_hops(n);
        let t = trace_lazy(raw.as_bytes(), &opts(&[])).unwrap();
        assert_eq!(t.hop_count(), n);
        assert_eq!(t.hops().count(), n);
        // 16 bytes a hop; the header block is ~200 bytes a hop. Holding the hops, their `raw`
        // text or a parsed copy of the headers would break this at once.
        assert!(
            t.retained_bytes() <= n * 16,
            "retained {} bytes for {n} hops of {} input bytes",
            t.retained_bytes(),
            raw.len()
        );
        assert!(t.retained_bytes() * 10 < raw.len());
    }
}
