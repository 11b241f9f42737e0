//! CSV with a header row (RFC 4180: `"` quoting with doubled quotes, fields spanning lines,
//! `\n` or `\r\n` line ends), read with `csv-core` into bounded buffers.
//!
//! Header rules (what real Log Analytics and pandas exports look like):
//! - a UTF-8 byte-order mark before the header is skipped;
//! - a ` [UTC]` suffix is removed from a column name (`TimeGenerated [UTC]` is `TimeGenerated`);
//!   another zone suffix (`AppLogDateTime [Jerusalem]`) is removed too, but the zone is kept in
//!   the column's metadata and its values are kept as text, since they are local times; a
//!   `TimeGenerated` in another zone than UTC refuses the payload;
//! - an unnamed first column (the DataFrame index of msticpy's exports) is dropped, unless
//!   [`ParseOptions::keep_unnamed_index`]; other unnamed columns are named `ColumnN` (N its
//!   1-based position);
//! - a repeated name gets `_` appended until it is unique (Log Analytics' own rule).
//!
//! Values: an empty field is null (CSV cannot tell it from an empty string); others are typed
//! by [`crate::value::classify_text`]. A record with another number of fields than the header is
//! rejected.

use std::borrow::Cow;
use std::collections::HashSet;
use std::io::{self, BufRead};

use csv_core::ReadRecordResult;

use crate::IngestError;
use crate::chunk::ChunkBuilder;
use crate::input::Framed;
use crate::kind::TIME_GENERATED;
use crate::parse::ParseOptions;
use crate::schema::{TableSchema, free_name, split_zone_suffix};
use crate::value::{Cell, classify_text};

struct HeaderColumn {
    name: String,
    zone: Option<String>,
    skip: bool,
}

pub(crate) struct CsvSource<R> {
    inner: R,
    core: csv_core::Reader,
    header: Vec<HeaderColumn>,
    scratch: Vec<u8>,
    scratch_ends: Vec<usize>,
    /// Line ends skipped here before records (csv-core leaves the `\n` of a `\r\n` for the
    /// next record, which would put that record a line early).
    skipped_newlines: u64,
}

impl<R: BufRead> CsvSource<R> {
    /// Reads the header row.
    pub(crate) fn new(inner: R, table: &str, options: &ParseOptions) -> Result<Self, IngestError> {
        let mut src = Self {
            inner,
            core: csv_core::Reader::new(),
            header: Vec::new(),
            scratch: vec![0; 64 * 1024],
            scratch_ends: vec![0; 1024],
            skipped_newlines: 0,
        };
        let refuse = |reason: String| IngestError::Refused {
            table: table.to_owned(),
            line: 1,
            reason,
        };
        let (mut buf, mut ends) = (Vec::new(), Vec::new());
        let framed = src
            .next(&mut buf, &mut ends, options.max_record_bytes)
            .map_err(|source| IngestError::Read {
                table: table.to_owned(),
                line: 1,
                source,
            })?;
        match framed {
            Framed::Record { .. } => {}
            Framed::End => return Ok(src),
            Framed::TooLarge { bytes, .. } => {
                return Err(refuse(format!(
                    "header row of {bytes} bytes exceeds the limit of {} bytes",
                    options.max_record_bytes
                )));
            }
            Framed::Broken { reason, .. } => return Err(refuse(reason)),
        }
        let text = std::str::from_utf8(&buf)
            .map_err(|_| refuse("header row is not valid UTF-8".to_owned()))?;
        let mut seen = HashSet::new();
        let mut start = 0;
        for (i, &end) in ends.iter().enumerate() {
            // The row is valid UTF-8 as a whole, but a delimiter may split a character between
            // two names (bytes `EF BB , BF`): each name must be valid on its own.
            let field = text
                .get(start..end)
                .ok_or_else(|| refuse(format!("header column {} is not valid UTF-8", i + 1)))?;
            let (name, zone) = split_zone_suffix(field);
            start = end;
            if i == 0 && name.is_empty() && !options.keep_unnamed_index {
                src.header.push(HeaderColumn {
                    name: String::new(),
                    zone: None,
                    skip: true,
                });
                continue;
            }
            if let Some(zone) = zone
                && name.eq_ignore_ascii_case(TIME_GENERATED)
            {
                return Err(refuse(format!(
                    "{TIME_GENERATED} is in time zone {zone:?}; export it in UTC"
                )));
            }
            let base = if name.is_empty() {
                format!("Column{}", i + 1)
            } else {
                name.to_owned()
            };
            let name = free_name(&base, |n| seen.contains(n));
            seen.insert(name.clone());
            src.header.push(HeaderColumn {
                name,
                zone: zone.map(str::to_owned),
                skip: false,
            });
        }
        Ok(src)
    }

    pub(crate) fn line(&self) -> u64 {
        self.core.line() + self.skipped_newlines
    }

    /// Consumes the line ends before the next record.
    fn skip_line_ends(&mut self) -> io::Result<()> {
        loop {
            let buf = self.inner.fill_buf()?;
            let n = buf
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count();
            if n == 0 {
                return Ok(());
            }
            self.skipped_newlines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
            self.inner.consume(n);
        }
    }

    /// Appends the next record's field bytes to `out` and its field ends (relative to the
    /// record's start) to `ends`. A record longer than `max` bytes is skipped.
    pub(crate) fn next(
        &mut self,
        out: &mut Vec<u8>,
        ends: &mut Vec<usize>,
        max: usize,
    ) -> io::Result<Framed> {
        let (start, ends_start) = (out.len(), ends.len());
        self.skip_line_ends()?;
        let line = self.line();
        let (mut outlen, mut nends, mut total) = (0usize, 0usize, 0u64);
        let mut skipping = false;
        loop {
            if !skipping {
                let cap = out.len() - start;
                if outlen == cap {
                    if cap > max {
                        skipping = true;
                        out.truncate(start);
                    } else {
                        out.resize(start + (cap * 2).max(256).min(max + 1), 0);
                    }
                }
                if nends == ends.len() - ends_start {
                    ends.resize(ends_start + (nends * 2).max(32), 0);
                }
            }
            let input = self.inner.fill_buf()?;
            let (res, nin, nout, nend) = if skipping {
                self.core
                    .read_record(input, &mut self.scratch, &mut self.scratch_ends)
            } else {
                self.core.read_record(
                    input,
                    &mut out[start + outlen..],
                    &mut ends[ends_start + nends..],
                )
            };
            self.inner.consume(nin);
            total += nout as u64;
            if !skipping {
                outlen += nout;
                nends += nend;
            }
            match res {
                ReadRecordResult::InputEmpty
                | ReadRecordResult::OutputFull
                | ReadRecordResult::OutputEndsFull => {}
                ReadRecordResult::Record if skipping => {
                    out.truncate(start);
                    ends.truncate(ends_start);
                    return Ok(Framed::TooLarge { line, bytes: total });
                }
                ReadRecordResult::Record => {
                    out.truncate(start + outlen);
                    ends.truncate(ends_start + nends);
                    return Ok(Framed::Record { line });
                }
                ReadRecordResult::End => {
                    out.truncate(start);
                    ends.truncate(ends_start);
                    return Ok(Framed::End);
                }
            }
        }
    }

    /// Adds one record as a row; the reason it is rejected otherwise.
    pub(crate) fn push_record<'a>(
        &self,
        builder: &mut ChunkBuilder<'a>,
        schema: &TableSchema,
        record: &'a str,
        ends: &[usize],
    ) -> Result<(), String> {
        if ends.len() != self.header.len() {
            return Err(format!(
                "expected {} fields as in the header, found {}",
                self.header.len(),
                ends.len()
            ));
        }
        let mut start = 0;
        for (col, &end) in self.header.iter().zip(ends) {
            let text = record.get(start..end).ok_or("field is not valid UTF-8")?;
            start = end;
            if col.skip {
                continue;
            }
            let cell = (!text.is_empty()).then(|| Cell {
                text: Cow::Borrowed(text),
                scalar: classify_text(text, col.zone.is_none()),
            });
            builder.push_field(schema, &col.name, col.zone.as_deref(), cell)?;
        }
        Ok(())
    }
}
