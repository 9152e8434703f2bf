/*  strategy_private - what strategy.c and strategy_validate.c share:
    allocation helpers for messages the strategy fills in, and the kind
    tests. Not for the rest of the apiserver (strategy.h is). */
#ifndef ZUBE_APISERVER_STRATEGY_PRIVATE_H_INCLUDED
#define ZUBE_APISERVER_STRATEGY_PRIVATE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "apps.pb-c.h"
#include "batch.pb-c.h"
#include "coordination.pb-c.h"
#include "core.pb-c.h"
#include "discovery.pb-c.h"
#include "meta.pb-c.h"
#include "strategy.h"

//  A new, initialised message of descriptor's type (NULL: out of memory)
void *strategy_message_new (const ProtobufCMessageDescriptor *descriptor);
//  A deep copy through pack and unpack (system allocator), or NULL
ProtobufCMessage *strategy_message_copy (const ProtobufCMessage *message);
//  Replaces *field with a copy of value (NULL clears); false when out of memory
bool strategy_set_string (char **field, const char *value);
//  The object's metadata (NULL if none), and the kind's descriptor test
Zube__ObjectMeta *strategy_meta (const ProtobufCMessage *object);
bool strategy_is (const zube_kind_t *kind, const ProtobufCMessageDescriptor *descriptor);
//  Whether the selector matches the labels of a template (NULL: no labels)
bool strategy_selector_matches_labels (const Zube__LabelSelector *selector,
                                       const Zube__ObjectMeta *meta);

#endif
