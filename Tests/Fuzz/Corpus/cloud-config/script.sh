#!/bin/sh
echo hello $private_ipv4
