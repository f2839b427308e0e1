//! Errors of the scaling helper.

/// What can be wrong with a scaling file, a trace, or a controller run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScaleError {
    /// The file is not a scaling file (JSON syntax, an unknown field, a wrong type).
    #[error("not a scaling file: {message}")]
    Parse {
        /// serde's message, which names the field.
        message: String,
    },
    /// A policy breaks a rule of Application Auto Scaling or CloudWatch.
    #[error("policy `{policy}`{}: {message}", step.map(|s| format!(", step {s}")).unwrap_or_default())]
    Invalid {
        /// The policy's name.
        policy: String,
        /// The step (0-based, in the file's order), when the rule is about one.
        step: Option<usize>,
        /// What is wrong and what to do.
        message: String,
    },
    /// An option outside what is allowed.
    #[error("{field} = {value} is not allowed: {allowed}")]
    Option {
        /// The option.
        field: String,
        /// Its value.
        value: String,
        /// What is allowed.
        allowed: String,
    },
    /// A trace file line that is not `seconds,messages`.
    #[error("trace line {line}: {message}")]
    Trace {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Reading the queue or changing capacity failed.
    #[error("{0}")]
    Io(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl ScaleError {
    /// True when the user must fix the file or the options (exit code 2).
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, ScaleError::Io(_))
    }

    pub(crate) fn invalid(policy: &str, step: Option<usize>, message: impl Into<String>) -> ScaleError {
        ScaleError::Invalid { policy: policy.to_string(), step, message: message.into() }
    }
}
