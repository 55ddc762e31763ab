"""The load generator agent (stdlib only; imports nothing of labctl). ``loadgen`` is uploaded to
lab hosts as one file and run there as the UDP/TCP sender and sink.
"""
