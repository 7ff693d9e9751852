//! One value per channel, named by the channel rather than by its position.

use super::Channel;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PerChannel<T> {
    pub sms: T,
    pub email: T,
    pub push: T,
}

impl<T> PerChannel<T> {
    pub fn from_fn(mut f: impl FnMut(Channel) -> T) -> Self {
        PerChannel {
            sms: f(Channel::Sms),
            email: f(Channel::Email),
            push: f(Channel::Push),
        }
    }

    pub fn of(&self, channel: Channel) -> &T {
        match channel {
            Channel::Sms => &self.sms,
            Channel::Email => &self.email,
            Channel::Push => &self.push,
        }
    }

    pub fn of_mut(&mut self, channel: Channel) -> &mut T {
        match channel {
            Channel::Sms => &mut self.sms,
            Channel::Email => &mut self.email,
            Channel::Push => &mut self.push,
        }
    }

    /// Each channel with its value, in `Channel::ALL`'s order.
    pub fn iter(&self) -> impl Iterator<Item = (Channel, &T)> {
        Channel::ALL.iter().map(move |&c| (c, self.of(c)))
    }

    pub fn map<U>(&self, mut f: impl FnMut(Channel, &T) -> U) -> PerChannel<U> {
        PerChannel::from_fn(|c| f(c, self.of(c)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_channel_has_its_own_value() {
        let mut v = PerChannel::from_fn(|c| c.lower().len());
        *v.of_mut(Channel::Push) = 0;
        assert_eq!(
            (*v.of(Channel::Sms), *v.of(Channel::Email), *v.of(Channel::Push)),
            (3, 5, 0)
        );
        let names: Vec<_> = v
            .map(|c, n| format!("{}={n}", c.lower()))
            .iter()
            .map(|(_, s)| s.clone())
            .collect();
        assert_eq!(names, ["sms=3", "email=5", "push=0"]);
    }
}
