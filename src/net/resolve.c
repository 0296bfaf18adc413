// SPDX-License-Identifier: MIT
/* placeholder until the networking change lands */
