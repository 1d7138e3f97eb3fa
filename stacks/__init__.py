"""CDK stacks and constructs. Stacks only wire constructs; each construct owns one concern."""
