//! `flag_set!`: small bit-flag newtypes over libc constants, so no flag crate is needed.
//!
//! Each generated type is `Copy`, combines with `|`, has an `empty()` value, and prints the
//! names of the flags it holds, which keeps call sites such as
//! `send(fd, buf, SendFlags::NOSIGNAL | SendFlags::MORE)` readable and type-checked.

/// Declares a flag-set newtype with named constants.
///
/// Unknown bits can only enter through the crate-private `from_bits_retain`, used when the
/// kernel hands flags back (such as `poll`'s `revents`), so a caller can never pass a flag
/// that the type does not name.
macro_rules! flag_set {
    (
        $(#[$meta: meta])*
        pub struct $name: ident($bits: ty) {
            $(
                $(#[$flag_meta: meta])*
                const $flag: ident = $value: expr;
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name($bits);

        impl $name {
            $(
                $(#[$flag_meta])*
                pub const $flag: Self = Self($value as $bits);
            )*

            /// The set holding no flags.
            pub const fn empty() -> Self {
                Self(0)
            }

            /// Whether no flag is set.
            pub const fn is_empty(self) -> bool {
                self.0 == 0
            }

            /// Whether every flag in `other` is also in `self`.
            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }

            /// Whether `self` and `other` share at least one flag.
            pub const fn intersects(self, other: Self) -> bool {
                self.0 & other.0 != 0
            }

            /// The flags of both sets.
            pub const fn union(self, other: Self) -> Self {
                Self(self.0 | other.0)
            }

            /// The raw value passed to the kernel.
            pub const fn bits(self) -> $bits {
                self.0
            }

            /// Keeps every bit the kernel returned, including ones this type does not name.
            #[allow(dead_code)]
            pub(crate) const fn from_bits_retain(bits: $bits) -> Self {
                Self(bits)
            }
        }

        impl std::ops::BitOr for $name {
            type Output = Self;

            fn bitor(self, other: Self) -> Self {
                self.union(other)
            }
        }

        impl std::ops::BitOrAssign for $name {
            fn bitor_assign(&mut self, other: Self) {
                *self = self.union(other);
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let named: &[(&str, $bits)] = &[$((stringify!($flag), $value as $bits)),*];
                write!(f, "{}(", stringify!($name))?;
                let mut rest = self.0;
                let mut first = true;
                for &(name, bits) in named {
                    if bits != 0 && self.0 & bits == bits {
                        if !first {
                            f.write_str(" | ")?;
                        }
                        f.write_str(name)?;
                        first = false;
                        rest &= !bits;
                    }
                }
                if rest != 0 {
                    if !first {
                        f.write_str(" | ")?;
                    }
                    write!(f, "{rest:#x}")?;
                }
                f.write_str(")")
            }
        }
    };
}

pub(crate) use flag_set;
