//! Plumbing shared by the payload types: string enums with a fixed set of wire names.

use serde::de;

/// The error for a string that is not one of an enum's wire names, worded
/// `unknown variant "done", expected one of queued, running, ...` (no backticks,
/// so it reads well after an event name and a JSON path).
pub(crate) fn unknown_variant<E: de::Error>(value: &str, expected: &[&str]) -> E {
    E::custom(format_args!(
        "unknown variant {value:?}, expected one of {}",
        expected.join(", ")
    ))
}

/// Defines a fieldless enum that is serialised as one of a fixed set of strings,
/// with `ALL`, `NAMES`, `name()`, `from_name()`, `Display` and serde impls whose
/// error names the bad value and lists the valid ones.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in wire-documentation order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// Every wire name, in the same order as [`Self::ALL`].
            pub const NAMES: &'static [&'static str] = &[$($wire),+];

            /// The wire name.
            pub const fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => $wire, )+
                }
            }

            /// Looks a value up by its wire name.
            pub fn from_name(name: &str) -> Option<$name> {
                match name {
                    $( $wire => Some($name::$variant), )+
                    _ => None,
                }
            }
        }

        // A string, one of the wire names (the `json-schema` feature).
        #[cfg(feature = "json-schema")]
        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string", "enum": $name::NAMES })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.name())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;

                impl serde::de::Visitor<'_> for Visitor {
                    type Value = $name;

                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        write!(f, "one of {}", $name::NAMES.join(", "))
                    }

                    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<$name, E> {
                        $name::from_name(value)
                            .ok_or_else(|| crate::wire::unknown_variant(value, $name::NAMES))
                    }
                }

                deserializer.deserialize_str(Visitor)
            }
        }
    };
}

pub(crate) use wire_enum;

/// `#[serde(with)]` module for a required RFC 3339 timestamp: written by
/// `time`'s RFC 3339 formatter, read by its parser, with an error that quotes
/// the bad value and says what was expected.
pub(crate) mod timestamp {
    use std::fmt;

    use serde::{Deserializer, Serializer, de};
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    pub(crate) fn serialize<S: Serializer>(
        value: &OffsetDateTime,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        time::serde::rfc3339::serialize(value, serializer)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<OffsetDateTime, D::Error> {
        deserializer.deserialize_str(Visitor)
    }

    pub(super) struct Visitor;

    impl de::Visitor<'_> for Visitor {
        type Value = OffsetDateTime;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an RFC 3339 timestamp")
        }

        fn visit_str<E: de::Error>(self, value: &str) -> Result<OffsetDateTime, E> {
            OffsetDateTime::parse(value, &Rfc3339).map_err(|error| {
                E::custom(format_args!(
                    "invalid timestamp {value:?}, expected RFC 3339 like \
                     \"2021-10-06T18:14:33Z\" ({error})"
                ))
            })
        }
    }
}

/// `#[serde(with)]` module for a nullable RFC 3339 timestamp; see [`timestamp`].
pub(crate) mod timestamp_option {
    use std::fmt;

    use serde::{Deserializer, Serializer, de};
    use time::OffsetDateTime;

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<OffsetDateTime>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        time::serde::rfc3339::option::serialize(value, serializer)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<OffsetDateTime>, D::Error> {
        deserializer.deserialize_option(Visitor)
    }

    struct Visitor;

    impl<'de> de::Visitor<'de> for Visitor {
        type Value = Option<OffsetDateTime>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an RFC 3339 timestamp or null")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(
            self,
            deserializer: D,
        ) -> Result<Self::Value, D::Error> {
            deserializer
                .deserialize_str(super::timestamp::Visitor)
                .map(Some)
        }
    }
}
