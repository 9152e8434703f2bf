/*  zube.h - the whole public client API of libzube in one include. */
#ifndef ZUBE_H_INCLUDED
#define ZUBE_H_INCLUDED

#include "zube/version.h"
#include "zube/status.h"
#include "zube/log.h"
#include "zube/bus.h"
#include "zube/certs.h"
#include "zube/config.h"
#include "zube/kinds.h"
#include "zube/quantity.h"
#include "zube/codec.h"

#endif
