#ifndef COREOS_CYAML_SHIM_H
#define COREOS_CYAML_SHIM_H
#include <yaml.h>
#endif
