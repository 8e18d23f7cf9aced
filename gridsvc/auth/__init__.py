"""Who may do what, below every other layer of gridsvc that asks.

- :mod:`gridsvc.auth.principal`: the signed-in user (Principal) and where a target lies (Place);
- :mod:`gridsvc.auth.policy`: the permission matrix (role × action) and the scope rule;
- :mod:`gridsvc.auth.masking`: what of personal data a role sees.

Repositories, services, routes, pages and exports import from here; this package imports only
the vocabulary, the errors and the models (never a repository or a service). Building a
Principal from a stored account is a service: :func:`gridsvc.services.principals.principal_for`.
"""
