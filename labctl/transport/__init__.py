"""Transport layer (side effects: network): how labctl reaches lab hosts.

``base`` declares the one ``Transport`` interface and its ``CommandResult`` (pure);
``target`` says where a host is (pure data); ``ssh`` implements the interface over SSH and is
the only module importing fabric/paramiko; ``netns_socket`` opens TCP sockets inside a network
namespace. This layer may import the base layer (labctl.errors, labctl.cpulist,
labctl.packaged), the pure stages and labctl.local, and nothing above it (labs, execution,
runner, cli).
"""
