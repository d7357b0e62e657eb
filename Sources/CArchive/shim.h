#ifndef COREOS_CARCHIVE_SHIM_H
#define COREOS_CARCHIVE_SHIM_H
#include <archive.h>
#include <archive_entry.h>
#endif
