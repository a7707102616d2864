"""The marketplace: the provider's inventory, its own demand, tenants and contracts."""
