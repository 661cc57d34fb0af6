"""Authentication that is not a single addAuth packet: SASL mechanisms and their configuration.

Sans-IO like the engine: the mechanisms turn tokens into tokens (`digest_md5`; `gss`, around
MIT krb5 through python-gssapi), `quorum_sasl` frames them for the links between members,
`jaas` reads a JAAS file's text, `principal` canonicalises names as ZooKeeper's Kerberos rules
do, and `settings` gathers what a server needs from zoo.cfg, the environment and the JAAS file
once, at start-up.
"""
