"""`nmosauth-lite demo`: the whole IS-10 story on loopback, for newcomers and for device bring-up."""
