//! Network value types of the configuration: MAC addresses and addresses with a prefix length.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// A 48-bit MAC address, written `BC:24:11:CA:FE:01`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// Multicast MACs (low bit of the first octet set) cannot be a NIC's own address.
    pub fn is_unicast(&self) -> bool {
        self.0[0] & 1 == 0
    }

    /// Lower-case form, as guest agents and Linux report it.
    pub fn to_lowercase(&self) -> String {
        self.to_string().to_ascii_lowercase()
    }
}

impl FromStr for Mac {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split([':', '-']).collect();
        if parts.len() != 6 {
            return Err(format!(
                "`{s}` is not a MAC address (six hex octets separated by `:`)"
            ));
        }
        let mut octets = [0u8; 6];
        for (octet, part) in octets.iter_mut().zip(&parts) {
            if part.len() != 2 {
                return Err(format!(
                    "`{s}` is not a MAC address: octet `{part}` must be two hex digits"
                ));
            }
            *octet = u8::from_str_radix(part, 16)
                .map_err(|_| format!("`{s}` is not a MAC address: `{part}` is not hexadecimal"))?;
        }
        Ok(Mac(octets))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02X}:{b:02X}:{c:02X}:{d:02X}:{e:02X}:{g:02X}")
    }
}

impl Serialize for Mac {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An address with its prefix length (`192.168.20.100/24`); also used for subnets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub address: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    fn max_prefix(address: &IpAddr) -> u8 {
        if address.is_ipv4() { 32 } else { 128 }
    }

    fn bits(address: &IpAddr) -> u128 {
        match address {
            IpAddr::V4(v4) => u128::from(u32::from(*v4)),
            IpAddr::V6(v6) => u128::from(*v6),
        }
    }

    fn mask(&self) -> u128 {
        let width = u32::from(Self::max_prefix(&self.address));
        let host_bits = width - u32::from(self.prefix);
        let all = if width == 128 {
            u128::MAX
        } else {
            (1u128 << width) - 1
        };
        if host_bits >= 128 {
            0
        } else {
            all & !((1u128 << host_bits) - 1)
        }
    }

    /// Whether `other` lies inside this prefix.
    pub fn contains(&self, other: &IpAddr) -> bool {
        self.address.is_ipv4() == other.is_ipv4()
            && Self::bits(&self.address) & self.mask() == Self::bits(other) & self.mask()
    }

    /// Whether two prefixes share any address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        let narrower = if self.prefix <= other.prefix {
            self
        } else {
            other
        };
        let wider = if self.prefix <= other.prefix {
            other
        } else {
            self
        };
        narrower.contains(&wider.address)
    }

    /// True for the network address or (IPv4) broadcast address, which a host must not use.
    pub fn is_network_or_broadcast(&self) -> bool {
        let width = Self::max_prefix(&self.address);
        if self.prefix + 1 >= width {
            return false;
        }
        let bits = Self::bits(&self.address);
        let host = bits
            & !self.mask()
            & if width == 32 {
                u128::from(u32::MAX)
            } else {
                u128::MAX
            };
        host == 0 || (self.address.is_ipv4() && host == (!self.mask() & u128::from(u32::MAX)))
    }

    /// Whether the address has host bits set, i.e. is not a clean subnet.
    pub fn has_host_bits(&self) -> bool {
        Self::bits(&self.address)
            & !self.mask()
            & if self.address.is_ipv4() {
                u128::from(u32::MAX)
            } else {
                u128::MAX
            }
            != 0
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = s.split_once('/').ok_or_else(|| {
            format!(
                "`{s}` has no prefix length: write it as ADDRESS/PREFIX, e.g. 192.168.20.100/24"
            )
        })?;
        let address: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{addr}` is not an IP address"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| format!("`{prefix}` is not a prefix length"))?;
        let max = Self::max_prefix(&address);
        if prefix > max {
            return Err(format!(
                "prefix /{prefix} is longer than the {max} bits of `{address}`"
            ));
        }
        Ok(Cidr { address, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multicast_mac_is_not_unicast() {
        assert!(
            !"01:00:5E:00:00:01"
                .parse::<Mac>()
                .expect("mac")
                .is_unicast()
        );
        assert!(
            "BC:24:11:CA:FE:01"
                .parse::<Mac>()
                .expect("mac")
                .is_unicast()
        );
    }

    #[test]
    fn mac_prints_upper_and_lower_case() {
        let mac: Mac = "bc:24:11:ca:fe:01".parse().expect("mac");
        assert_eq!(mac.to_string(), "BC:24:11:CA:FE:01");
        assert_eq!(mac.to_lowercase(), "bc:24:11:ca:fe:01");
    }

    #[test]
    fn prefix_containment_and_special_addresses() {
        let net: Cidr = "192.168.20.100/24".parse().expect("cidr");
        assert!(net.contains(&"192.168.20.1".parse().expect("ip")));
        assert!(!net.contains(&"192.168.21.1".parse().expect("ip")));
        assert!(
            "192.168.20.0/24"
                .parse::<Cidr>()
                .expect("c")
                .is_network_or_broadcast()
        );
        assert!(
            "192.168.20.255/24"
                .parse::<Cidr>()
                .expect("c")
                .is_network_or_broadcast()
        );
        assert!(!net.is_network_or_broadcast());
        assert!(
            "10.244.0.0/16"
                .parse::<Cidr>()
                .expect("c")
                .overlaps(&"10.244.3.0/24".parse().expect("c"))
        );
        assert!(
            !"10.244.0.0/16"
                .parse::<Cidr>()
                .expect("c")
                .overlaps(&"10.96.0.0/12".parse().expect("c"))
        );
        assert!(
            "fd00::1/64"
                .parse::<Cidr>()
                .expect("c")
                .contains(&"fd00::ff".parse().expect("ip"))
        );
        assert!("192.168.20.100/33".parse::<Cidr>().is_err());
    }
}
