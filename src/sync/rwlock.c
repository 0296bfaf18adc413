// SPDX-License-Identifier: MIT
/* placeholder: written by the sync primitives change */
