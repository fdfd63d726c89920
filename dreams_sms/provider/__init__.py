"""The provider wing: the Dreams API client and everything it needs to talk to it
(transport, OAuth, answers, codes, segments, retries, validation). Knows no Redis."""
