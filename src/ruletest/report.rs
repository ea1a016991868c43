//! What `promlite test rules` prints and writes: promtool's layout
//! (`Unit Testing: FILE`, then `  SUCCESS` or `  FAILED:` and each failure),
//! a closing summary line, the exit code, and JUnit suites.

use std::fmt;

use crate::junit::{Outcome, TestCase, TestSuite};

use super::runner::FileOutcome;

/// Exit code when every test passed.
pub const EXIT_OK: u8 = 0;
/// Exit code when a test failed (and every file was valid).
pub const EXIT_FAILED: u8 = 1;
/// Exit code when a file could not be read or is invalid.
pub const EXIT_INVALID: u8 = 2;

/// The results of a run over several test files.
#[derive(Debug, Default)]
pub struct Report {
    /// Per file, in the order given: its name and outcome.
    pub files: Vec<(String, FileOutcome)>,
}

impl Report {
    /// 0 when all passed, 2 when any file was invalid, else 1 when a test failed.
    pub fn exit_code(&self) -> u8 {
        if self.files.iter().any(|(_, o)| matches!(o, FileOutcome::Invalid(_))) {
            EXIT_INVALID
        } else if self.files.iter().any(|(_, o)| file_failed(o)) {
            EXIT_FAILED
        } else {
            EXIT_OK
        }
    }

    /// One JUnit suite per file, one case per test group (an invalid file is
    /// one case in error).
    pub fn junit(&self) -> Vec<TestSuite> {
        self.files
            .iter()
            .map(|(name, outcome)| {
                let mut suite = TestSuite::new(name.clone());
                match outcome {
                    FileOutcome::Invalid(errs) => suite.cases.push(TestCase {
                        name: "load".into(),
                        classname: name.clone(),
                        time_seconds: 0.0,
                        outcome: Outcome::Error {
                            message: errs.first().cloned().unwrap_or_default(),
                            details: errs.join("\n"),
                        },
                    }),
                    FileOutcome::Ran(groups) => {
                        for g in groups {
                            let outcome = if g.failures.is_empty() {
                                Outcome::Passed
                            } else {
                                Outcome::Failed {
                                    message: format!("{} check(s) failed", g.failures.len()),
                                    details: g.failures.join("\n\n"),
                                }
                            };
                            suite.cases.push(TestCase {
                                name: g.name.clone(),
                                classname: name.clone(),
                                time_seconds: g.seconds,
                                outcome,
                            });
                        }
                    }
                }
                suite
            })
            .collect()
    }
}

fn file_failed(o: &FileOutcome) -> bool {
    match o {
        FileOutcome::Invalid(_) => true,
        FileOutcome::Ran(groups) => groups.iter().any(|g| !g.failures.is_empty()),
    }
}

fn indent(text: &str, by: &str) -> String {
    text.lines().map(|l| format!("{by}{l}")).collect::<Vec<_>>().join("\n")
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (mut groups, mut failed_groups) = (0, 0);
        for (name, outcome) in &self.files {
            writeln!(f, "Unit Testing:  {name}")?;
            match outcome {
                FileOutcome::Invalid(errs) => {
                    writeln!(f, "  FAILED: the file cannot be run:")?;
                    for e in errs {
                        writeln!(f, "    {e}")?;
                    }
                }
                FileOutcome::Ran(gs) if gs.iter().all(|g| g.failures.is_empty()) => {
                    groups += gs.len();
                    writeln!(f, "  SUCCESS")?;
                }
                FileOutcome::Ran(gs) => {
                    groups += gs.len();
                    writeln!(f, "  FAILED:")?;
                    for g in gs.iter().filter(|g| !g.failures.is_empty()) {
                        failed_groups += 1;
                        writeln!(f, "    test {}:", g.name)?;
                        for (i, fail) in g.failures.iter().enumerate() {
                            if i > 0 {
                                writeln!(f)?;
                            }
                            writeln!(f, "{}", indent(fail, "      "))?;
                        }
                    }
                }
            }
            writeln!(f)?;
        }
        let invalid = self.files.iter().filter(|(_, o)| matches!(o, FileOutcome::Invalid(_))).count();
        if invalid == 0 && failed_groups == 0 {
            writeln!(f, "SUCCESS: {groups} test group(s) in {} file(s) passed", self.files.len())
        } else {
            writeln!(
                f,
                "FAILED: {failed_groups} of {groups} test group(s) failed; {invalid} of {} file(s) could not be run",
                self.files.len()
            )
        }
    }
}
