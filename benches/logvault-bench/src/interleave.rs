//! The query phase of a run: each query on every system in turn, in rounds.
//!
//! On shared machines the speed of the cores drifts by tens of percent over minutes. Run one
//! system's whole suite after another's and that drift lands between systems: two runs of the
//! same build disagreed by more than most changes move things, and within one run the service
//! key and the customer key, which read the same way, differed by up to 0.4 on a query
//! (docs/bench/journal.md, 2026-12-06). So the phase runs one query on every system (its cold,
//! warm and hot runs on one system, then the next), seconds apart rather than minutes; the
//! systems' order turns by one from each round to the next, so none is always first after
//! another's hot cache was dropped; and each query goes round `rounds` times, the runs of all
//! rounds pooled. A system's session is closed before the next system runs, so nothing of it
//! (a promotion into the memory tier) runs beside another's queries.

use anyhow::Context as _;

use crate::duckdb::{self, DuckDb, DuckSources, Release};
use crate::queries::{self, QueryDef, QueryRun, Repeats, Source};

/// One system (or, for DuckDB, the systems one runner process serves) in the query phase.
pub(crate) enum Contender {
    /// DataFusion or logvault, in this process.
    InProcess {
        /// The report's name.
        name: String,
        /// What it reads.
        source: Source,
    },
    /// A DuckDB release in its Python environment: its plaintext system and, for the release
    /// with the httpfs extension, its encrypted one.
    Duck(DuckContender),
}

/// A DuckDB release in the query phase.
pub(crate) struct DuckContender {
    /// The runner.
    pub duck: DuckDb,
    /// What it reads; the encrypted copy is written by its first run.
    pub sources: DuckSources,
    /// DuckDB's threads.
    pub threads: usize,
    /// Set when the runner failed as a whole: not tried again in this phase.
    pub failed: bool,
}

/// What the phase measured.
pub(crate) struct Phase {
    /// Per system, in the order of the contenders (a DuckDB release's plaintext system before
    /// its encrypted one), its runs of each query.
    pub systems: Vec<(String, Vec<QueryRun>)>,
    /// Systems and queries that could not run, said once each.
    pub notes: Vec<String>,
    /// The version each DuckDB release reported.
    pub duck_versions: Vec<(Release, String)>,
}

/// The runs of one system, and where it sorts in the report.
struct Slot {
    order: (usize, usize),
    name: String,
    runs: Vec<QueryRun>,
}

impl Slot {
    fn add(&mut self, run: QueryRun) -> anyhow::Result<()> {
        match self.runs.iter_mut().find(|r| r.query == run.query) {
            Some(kept) => kept.pool(run).with_context(|| format!("on {}", self.name)),
            None => {
                self.runs.push(run);
                Ok(())
            }
        }
    }
}

/// What the phase has measured so far.
#[derive(Default)]
struct Collected {
    slots: Vec<Slot>,
    notes: Vec<String>,
    duck_versions: Vec<(Release, String)>,
}

impl Collected {
    /// Adds `run` to system `name`'s runs (pooled with an earlier round's of the same query);
    /// `order` is where a system first seen here sorts in the report.
    fn add(&mut self, order: (usize, usize), name: &str, run: QueryRun) -> anyhow::Result<()> {
        let at = match self.slots.iter().position(|s| s.name == name) {
            Some(at) => at,
            None => {
                self.slots.push(Slot {
                    order,
                    name: name.to_owned(),
                    runs: Vec::new(),
                });
                self.slots.len() - 1
            }
        };
        self.slots[at].add(run)
    }

    /// Says `text` and keeps it for the report, once.
    fn note(&mut self, text: String, say: &dyn Fn(&str)) {
        if !self.notes.contains(&text) {
            say(&text);
            self.notes.push(text);
        }
    }

    /// One DuckDB release's turn at `query` (contender `ci`): its runs, or notes of what
    /// failed; a runner that fails as a whole is marked `failed` (not tried again).
    fn duck_turn(
        &mut self,
        ci: usize,
        contender: &mut DuckContender,
        query: &QueryDef,
        repeats: Repeats,
        say: &dyn Fn(&str),
    ) -> anyhow::Result<()> {
        if contender.failed {
            return Ok(());
        }
        let DuckContender {
            duck,
            sources,
            threads,
            failed,
        } = contender;
        let release = duck.release;
        let outcome = match duck.run(sources, std::slice::from_ref(query), repeats, *threads) {
            Ok(outcome) => outcome,
            Err(e) => {
                *failed = true;
                self.note(format!("DuckDB {} failed: {e:#}", release.version), say);
                return Ok(());
            }
        };
        if !self.duck_versions.iter().any(|(r, _)| *r == release) {
            self.duck_versions.push((release, outcome.version.clone()));
        }
        for (system, q, why) in outcome.failed_queries {
            self.note(format!("{system} could not run {q}: {why}"), say);
        }
        for (name, result) in outcome.systems {
            match result {
                Ok(runs) => {
                    let sub = usize::from(name == duckdb::ENCRYPTED);
                    for run in runs {
                        self.add((ci, sub), &name, run)?;
                    }
                }
                Err(why) => self.note(format!("{name} skipped: {why}"), say),
            }
        }
        Ok(())
    }

    /// The phase's result: systems in the contenders' order, each one's runs in the suite's.
    fn into_phase(mut self, suite: &[QueryDef]) -> Phase {
        self.slots.sort_by_key(|s| s.order);
        for slot in &mut self.slots {
            // The suite's order, whatever order the rounds visited the queries in.
            slot.runs
                .sort_by_key(|r| suite.iter().position(|q| q.name == r.query));
        }
        Phase {
            systems: self.slots.into_iter().map(|s| (s.name, s.runs)).collect(),
            notes: self.notes,
            duck_versions: self.duck_versions,
        }
    }
}

/// The order in which round `turn` visits `n` contenders: all of them, starting at `turn % n`.
pub(crate) fn turn_order(turn: usize, n: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |k| (turn + k) % n)
}

/// Runs every query of `suite` on every contender, `repeats.rounds` times (see the module's
/// documentation); `say` reports progress.
///
/// # Errors
/// An in-process system's open, plan or execution error; answers that change between runs or
/// rounds. A DuckDB failure is a note, not an error.
pub(crate) async fn run(
    contenders: &mut [Contender],
    suite: &[QueryDef],
    repeats: Repeats,
    say: &dyn Fn(&str),
) -> anyhow::Result<Phase> {
    let rounds = repeats.rounds.max(1);
    let mut collected = Collected::default();
    for (qi, query) in suite.iter().enumerate() {
        say(&format!(
            "{}: {rounds} round(s) on {} system(s)",
            query.title,
            contenders.len()
        ));
        for round in 0..rounds {
            for ci in turn_order(qi * rounds + round, contenders.len()) {
                match &mut contenders[ci] {
                    Contender::InProcess { name, source } => {
                        let run = queries::run_query(source, query, repeats)
                            .await
                            .with_context(|| format!("{} on {name}", query.name))?;
                        collected.add((ci, 0), name, run)?;
                    }
                    Contender::Duck(duck) => collected.duck_turn(ci, duck, query, repeats, say)?,
                }
            }
        }
    }
    Ok(collected.into_phase(suite))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answers::Answer;

    #[test]
    fn every_round_visits_every_contender_once_and_each_starts_one() {
        let n = 4;
        let mut firsts = Vec::new();
        for turn in 0..n {
            let mut order: Vec<usize> = turn_order(turn, n).collect();
            firsts.push(order[0]);
            order.sort_unstable();
            assert_eq!(order, vec![0, 1, 2, 3]);
        }
        firsts.sort_unstable();
        assert_eq!(firsts, vec![0, 1, 2, 3]);
    }

    fn run(query: &str, cold: f64, answer: &str) -> QueryRun {
        QueryRun {
            query: query.into(),
            cold_ms: vec![cold],
            warm_ms: vec![cold / 2.0],
            hot_ms: Vec::new(),
            answer: Answer::from_json(&serde_json::json!({"columns": ["a"], "rows": [[answer]]}))
                .unwrap(),
        }
    }

    #[test]
    fn rounds_pool_per_query_and_a_changed_answer_is_refused() {
        let mut c = Collected::default();
        c.add((1, 0), "b", run("q", 2.0, "x")).unwrap();
        c.add((0, 0), "a", run("q", 1.0, "x")).unwrap();
        c.add((1, 0), "b", run("q", 4.0, "x")).unwrap();
        c.add((1, 0), "b", run("r", 8.0, "y")).unwrap();
        let slots = &c.slots;
        assert_eq!(slots.len(), 2);
        let b = &slots[0];
        assert_eq!(b.name, "b");
        assert_eq!(b.runs.len(), 2);
        assert_eq!(b.runs[0].cold_ms, vec![2.0, 4.0]);
        assert_eq!(b.runs[0].warm_ms, vec![1.0, 2.0]);
        let err = c.add((1, 0), "b", run("q", 3.0, "z")).unwrap_err();
        assert!(format!("{err:#}").contains("changed its answer"), "{err:#}");
    }
}
