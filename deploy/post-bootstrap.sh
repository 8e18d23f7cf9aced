#!/bin/sh
# Patroni's post_bootstrap (once, on the first primary; $1 is a connection URL): the gridsvc
# database with PostGIS. gridsvc applies its migrations when it starts.
set -eu
psql "$1" -v ON_ERROR_STOP=1 -c "CREATE DATABASE gridsvc"
psql "$(echo "$1" | sed 's#/postgres\([?]\|$\)#/gridsvc\1#')" -v ON_ERROR_STOP=1 \
  -c "CREATE EXTENSION IF NOT EXISTS postgis"
