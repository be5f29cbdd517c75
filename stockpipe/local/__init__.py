"""The local AWS stack on 127.0.0.1: moto in server mode (DynamoDB, S3, SNS, SQS) and
kinesis-mock (the npm package ``kinesis-local``) for Kinesis.

Why two endpoints. The MultiLangDaemon's Kinesis client (AWS SDK for Java v2, Netty) speaks
HTTP/2 with prior knowledge on an ``http://`` endpoint and CBOR; moto_server is HTTP/1.1 only
and never ends a closed shard (no ``ChildShards``). kinesis-mock serves HTTP/1.1 and h2c on
its plain port, CBOR and JSON, and models shard ends. DynamoDB (the daemon's lease tables and
ours), S3, SNS and SQS are plain HTTP/1.1 JSON/XML, which moto serves well.
"""
