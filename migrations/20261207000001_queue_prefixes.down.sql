DROP TABLE queue_prefixes;
