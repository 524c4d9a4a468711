//! The status icons, inline SVG compiled into the binary (shown with `|safe`: they are ours).

/// Last delivery succeeded (green check).
pub(crate) const OK: &str = include_str!("../../assets/icons/check.svg");
/// Last delivery failed (red cross).
pub(crate) const FAILED: &str = include_str!("../../assets/icons/cross.svg");
/// Never delivered (grey ring).
pub(crate) const NEVER: &str = include_str!("../../assets/icons/never.svg");
/// Inactive (grey slashed ring).
pub(crate) const DISABLED: &str = include_str!("../../assets/icons/disabled.svg");
/// A redelivery (two arrows).
pub(crate) const SYNC: &str = include_str!("../../assets/icons/sync.svg");
